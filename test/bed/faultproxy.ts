// A fault-injecting HTTP proxy for source-outage tests and benchmarks.
import { randomBytes } from "node:crypto";
import { createServer, request } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type FaultMode = "none" | "500" | "hang" | "garbage";

export interface FaultProxy {
  /** http://127.0.0.1:port — the upstream's paths, proxied. */
  url: string;
  /** What every request gets: forwarded ("none"), a 500, no answer ever, or 200 with random bytes. */
  mode: FaultMode;
  /** Requests answered with a fault. */
  faulted: number;
  close(): Promise<void>;
}

/**
 * A fault-injecting HTTP proxy in front of a real server (the test git server), for source
 * outages: switch `mode` at any time; requests already forwarded finish as they were.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: FaultProxy = { url: "", mode: "none", faulted: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    if (proxy.mode !== "none") {
      proxy.faulted++;
      req.resume();
      if (proxy.mode === "500") res.writeHead(500, { "Content-Type": "text/plain" }).end("injected failure\n");
      else if (proxy.mode === "garbage") res.writeHead(200, { "Content-Type": "application/x-git-upload-pack-advertisement" }).end(randomBytes(4096));
      // "hang": never answer; the client's timeout has to end it.
      return;
    }
    const fwd = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    fwd.on("error", (e) => res.destroy(e));
    req.pipe(fwd);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address() as AddressInfo;
  proxy.url = `http://127.0.0.1:${addr.port}`;
  proxy.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  return proxy;
}
