// A real git smart-HTTP server on loopback (`plumber demo` serves its repo with it; so do the
// test bed and the benchmarks): node:http in front of `git http-backend` run as CGI, over every
// bare repository under a root directory.
import { spawn, type ChildProcess } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { resolve } from "node:path";

export interface GitServerAuth {
  /** Accepted as `Authorization: Bearer <token>`, and as the password of Basic auth (any user). */
  token?: string;
  /** With password: accepted as Basic auth. */
  username?: string;
  password?: string;
}

export interface GitServerOptions {
  /** Directory holding the bare repositories (`<root>/<name>.git`). */
  root: string;
  /** When set, every request must authenticate; otherwise 401 with a Basic challenge. */
  auth?: GitServerAuth;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Serve git-receive-pack (push over HTTP). Default false: the server is read-only. */
  allowPush?: boolean;
  /**
   * When set, GET on this path returns the request counts as JSON `{total, byPath}` and DELETE
   * returns and resets them (for processes other than the server's, e.g. test workers). Not
   * counted, not authenticated; pick a path no repo can have.
   */
  statsPath?: string;
}

export interface GitServer {
  /** http://host:port */
  baseUrl: string;
  /** Clone URL of `<root>/<repoName>.git` (`.git` is appended unless already there). */
  url(repoName: string): string;
  /** Every request received, including refused ones; byPath is keyed by URL path (no query). */
  requests: { total: number; byPath: Map<string, number> };
  resetCounts(): void;
  stop(): Promise<void>;
}

const REALM = "plumber";

function findHttpBackend(): { cmd: string; args: string[] } {
  for (const p of ["/usr/lib/git-core/git-http-backend", "/usr/libexec/git-core/git-http-backend"]) {
    if (existsSync(p)) return { cmd: p, args: [] };
  }
  return { cmd: "git", args: ["http-backend"] };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The authenticated user name, or undefined when the request does not satisfy `auth`. */
function authenticate(header: string | undefined, auth: GitServerAuth): string | undefined {
  if (!header) return undefined;
  const m = /^(\S+)\s+(.*)$/.exec(header.trim());
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  const cred = m[2]!.trim();
  if (scheme === "bearer") {
    return auth.token !== undefined && safeEqual(cred, auth.token) ? "token" : undefined;
  }
  if (scheme === "basic") {
    const decoded = Buffer.from(cred, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    if (auth.username !== undefined && auth.password !== undefined) {
      if (safeEqual(user, auth.username) && safeEqual(pass, auth.password)) return user;
    }
    if (auth.token !== undefined && safeEqual(pass, auth.token)) return user || "token";
  }
  return undefined;
}

/** Starts the server; resolves once it listens. */
export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  const root = resolve(opts.root);
  const host = opts.host ?? "127.0.0.1";
  const backend = findHttpBackend();
  const requests = { total: 0, byPath: new Map<string, number>() };
  const children = new Set<ChildProcess>();
  const sockets = new Set<Socket>();

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://placeholder");
    const path = url.pathname;
    if (opts.statsPath !== undefined && path === opts.statsPath) {
      req.resume();
      const body = JSON.stringify({ total: requests.total, byPath: Object.fromEntries(requests.byPath) });
      if (req.method === "DELETE") {
        requests.total = 0;
        requests.byPath.clear();
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(body);
      return;
    }
    requests.total++;
    requests.byPath.set(path, (requests.byPath.get(path) ?? 0) + 1);

    let remoteUser = "";
    if (opts.auth) {
      const user = authenticate(req.headers.authorization, opts.auth);
      if (user === undefined) {
        req.resume();
        res.writeHead(401, {
          "WWW-Authenticate": `Basic realm="${REALM}"`,
          "Content-Type": "text/plain",
        });
        res.end("authentication required\n");
        return;
      }
      remoteUser = user;
    }
    let pathInfo: string;
    try {
      pathInfo = decodeURIComponent(path);
    } catch {
      pathInfo = "";
    }
    if (!pathInfo || pathInfo.split("/").includes("..") || pathInfo.includes("\0")) {
      req.resume();
      res.writeHead(400, { "Content-Type": "text/plain" }).end("bad path\n");
      return;
    }

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      GATEWAY_INTERFACE: "CGI/1.1",
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      SERVER_SOFTWARE: "plumber-gitserver",
      PATH_INFO: pathInfo,
      REQUEST_METHOD: req.method ?? "GET",
      QUERY_STRING: url.search.startsWith("?") ? url.search.slice(1) : url.search,
      REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
      // Upload-pack features clients may rely on (partial clone, fetch by sha).
      GIT_CONFIG_COUNT: "4",
      GIT_CONFIG_KEY_0: "uploadpack.allowFilter",
      GIT_CONFIG_VALUE_0: "true",
      GIT_CONFIG_KEY_1: "uploadpack.allowReachableSHA1InWant",
      GIT_CONFIG_VALUE_1: "true",
      GIT_CONFIG_KEY_2: "http.receivepack",
      GIT_CONFIG_VALUE_2: opts.allowPush ? "true" : "false",
      GIT_CONFIG_KEY_3: "safe.directory",
      GIT_CONFIG_VALUE_3: "*",
    };
    if (remoteUser) env.REMOTE_USER = remoteUser;
    const ct = req.headers["content-type"];
    if (ct) env.CONTENT_TYPE = ct;
    const cl = req.headers["content-length"];
    if (cl !== undefined) env.CONTENT_LENGTH = cl;
    const ce = req.headers["content-encoding"];
    // http-backend inflates gzip request bodies itself when told the encoding.
    if (ce) env.HTTP_CONTENT_ENCODING = ce;
    const proto = req.headers["git-protocol"];
    if (typeof proto === "string" && proto) env.GIT_PROTOCOL = proto;

    const child = spawn(backend.cmd, backend.args, { env, stdio: ["pipe", "pipe", "pipe"] });
    children.add(child);
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.on("error", (err) => {
      if (!res.headersSent) {
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(`git http-backend failed: ${err.message}\n`);
      } else {
        res.destroy(err);
      }
    });
    child.on("close", () => children.delete(child));
    req.pipe(child.stdin);
    child.stdin.on("error", () => {}); // backend may exit before reading everything
    req.on("aborted", () => child.kill("SIGKILL"));
    res.on("close", () => {
      if (child.exitCode === null && child.signalCode === null && !res.writableFinished) {
        child.kill("SIGKILL");
      }
    });

    // Parse the CGI header block, then stream the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    const onData = (chunk: Buffer) => {
      if (headersDone) return;
      head = Buffer.concat([head, chunk]);
      let end = head.indexOf("\r\n\r\n");
      let sepLen = 4;
      const lf = head.indexOf("\n\n");
      if (lf >= 0 && (end < 0 || lf < end)) {
        end = lf;
        sepLen = 2;
      }
      if (end < 0) {
        if (head.length > 64 * 1024) {
          child.kill("SIGKILL");
          res.writeHead(502).end("bad CGI response\n");
        }
        return;
      }
      headersDone = true;
      child.stdout.off("data", onData);
      let status = 200;
      let statusText: string | undefined;
      const headers: Record<string, string | string[]> = {};
      for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") {
          const sm = /^(\d{3})\s*(.*)$/.exec(value);
          if (sm) {
            status = Number(sm[1]);
            statusText = sm[2] || undefined;
          }
          continue;
        }
        const prev = headers[name];
        headers[name] = prev === undefined ? value : ([] as string[]).concat(prev, value);
      }
      if (statusText) res.writeHead(status, statusText, headers);
      else res.writeHead(status, headers);
      const rest = head.subarray(end + sepLen);
      if (rest.length) res.write(rest);
      child.stdout.pipe(res);
    };
    child.stdout.on("data", onData);
    child.stdout.on("end", () => {
      if (!headersDone && !res.headersSent) {
        res.writeHead(502, { "Content-Type": "text/plain" });
        res.end(`git http-backend produced no response\n${stderr}`);
      }
    });
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(`git server error: ${(err as Error).message}\n`);
    }
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", rej);
      res();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const baseUrl = `http://${hostPart}:${port}`;

  let stopped: Promise<void> | undefined;
  return {
    baseUrl,
    url: (repoName: string) =>
      `${baseUrl}/${repoName.replace(/^\/+/, "")}${repoName.endsWith(".git") ? "" : ".git"}`,
    requests,
    resetCounts() {
      requests.total = 0;
      requests.byPath.clear();
    },
    stop() {
      return (stopped ??= new Promise<void>((res) => {
        for (const c of children) c.kill("SIGKILL");
        server.close(() => res());
        for (const s of sockets) s.destroy();
      }));
    },
  };
}
