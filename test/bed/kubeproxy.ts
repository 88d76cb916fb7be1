// A recording proxy in front of the test apiserver: each `plumber run` of a multi-replica test
// talks to the apiserver through its own proxy (plain HTTP on loopback, forwarded over TLS), so
// the test can tell which replica sent which request, when, with what body and answer.
import { request as httpsRequest } from "node:https";
import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { stringify } from "yaml";

export interface Recorded {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  /** Request body (text) of writes. */
  body: string;
  status: number;
  /** Local clock, ms: the request reached the proxy / its answer was complete. */
  start: number;
  end: number;
}

export interface KubeProxy {
  url: string;
  readonly log: Recorded[];
  /** Requests for which this says true are held (not forwarded) until release(); recorded on arrival. */
  hold?: (r: Recorded) => boolean;
  /** Requests held now. */
  readonly held: Recorded[];
  /** Forwards every held request (and stops holding). */
  release(): void;
  /** A kubeconfig (YAML) for this proxy, with `token`. */
  kubeconfig(token: string): string;
  close(): Promise<void>;
}

export async function startKubeProxy(upstream: string, caPem: string): Promise<KubeProxy> {
  const up = new URL(upstream);
  const sockets = new Set<Socket>();
  const log: Recorded[] = [];
  const held: Array<{ rec: Recorded; go: () => void }> = [];
  const proxy: KubeProxy = {
    url: "",
    log,
    get held() {
      return held.map((h) => h.rec);
    },
    release() {
      proxy.hold = undefined;
      for (const h of held.splice(0)) h.go();
    },
    kubeconfig: () => "",
    close: async () => undefined,
  };
  const server = createServer((req, res) => {
    const start = Date.now();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? "/", "http://proxy");
      const rec: Recorded = { method: req.method ?? "GET", path: url.pathname, query: url.searchParams, body: req.method === "GET" ? "" : body.toString("utf8"), status: 0, start, end: 0 };
      const forward = (): void => {
        const fwd = httpsRequest(
          { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host }, ca: caPem },
          (answer) => {
            rec.status = answer.statusCode ?? 0;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            answer.on("end", () => {
              rec.end = Date.now();
              log.push(rec);
            });
          },
        );
        fwd.on("error", (e) => res.destroy(e));
        fwd.end(body);
      };
      if (proxy.hold?.(rec)) held.push({ rec, go: forward });
      else forward();
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(proxy, {
    url,
    kubeconfig: (token: string) =>
      stringify({
        apiVersion: "v1",
        kind: "Config",
        // client-node refuses plain HTTP unless told to skip TLS verification (there is no TLS to verify).
        clusters: [{ name: "proxy", cluster: { server: url, "insecure-skip-tls-verify": true } }],
        users: [{ name: "proxy", user: { token } }],
        contexts: [{ name: "proxy", context: { cluster: "proxy", user: "proxy" } }],
        "current-context": "proxy",
      }),
    close: () =>
      new Promise<void>((r) => {
        proxy.release();
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  });
}
