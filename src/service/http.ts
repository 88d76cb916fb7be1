// The one HTTP port plumber listens on: /metrics (Prometheus text), /healthz (the process is
// alive and its event loop turns) and /readyz (config loaded and the first read of every app's
// state done). Nothing else is served; no endpoint changes anything.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ProbeResult {
  ok: boolean;
  /** Why not, for /readyz. */
  reason?: string;
}

export interface ServiceHttpOptions {
  /** host:port, :port (all interfaces) or a bare port. Port 0 picks a free one. */
  addr: string;
  metrics: () => Promise<{ contentType: string; body: string }>;
  ready: () => ProbeResult;
  healthy?: () => ProbeResult;
}

export interface ServiceHttp {
  /** The bound address as host:port. */
  address: string;
  port: number;
  close(): Promise<void>;
}

export function parseListenAddr(addr: string): { host?: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]*):)?(\d{1,5})$/.exec(addr.trim());
  if (!m) throw new Error(`invalid listen address "${addr}": want host:port, :port or port`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`invalid listen address "${addr}": port out of range`);
  const host = m[1] ? m[1].replace(/^\[|\]$/g, "") : undefined;
  return { host: host || undefined, port };
}

export async function startServiceHttp(opts: ServiceHttpOptions): Promise<ServiceHttp> {
  const { host, port } = parseListenAddr(opts.addr);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    const probe = (r: ProbeResult): void => {
      res.writeHead(r.ok ? 200 : 503, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
      res.end(r.ok ? "ok\n" : `not ready: ${r.reason ?? "unknown"}\n`);
    };
    switch (path) {
      case "/healthz":
      case "/livez":
        probe(opts.healthy?.() ?? { ok: true });
        return;
      case "/readyz":
        probe(opts.ready());
        return;
      case "/metrics":
        opts.metrics().then(
          (m) => res.writeHead(200, { "Content-Type": m.contentType }).end(m.body),
          (e: unknown) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`metrics: ${e instanceof Error ? e.message : String(e)}\n`),
        );
        return;
      default:
        res.writeHead(404, { "Content-Type": "text/plain" }).end("not found: try /metrics, /healthz, /readyz\n");
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => reject(new Error(`cannot listen on ${opts.addr}: ${e.code ?? e.message}`));
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
    port: a.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
