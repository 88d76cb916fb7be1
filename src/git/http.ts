import tls from "node:tls";
// The HTTP client of the in-process ref listing (refs.ts), on node:http / node:https with
// keep-alive agents; the git CLI children get the same auth, CA and timeout (transportSettingsOf).
//
// - Authorization is sent up front on every request (no 401 round trip).
// - Credentials never appear in errors or in the onRequest hook (URLs are redacted, headers never printed).
// - Every request has a deadline (timeoutMs) covering connect, headers and the whole body.
// - The response body is read fully (bounded by maxResponseBytes) before it is handed back:
//   the deadline then measures the network only, and the socket goes back to the keep-alive pool
//   even when the caller does not consume an error response.
// - Redirects are followed only within the same origin (credentials never go elsewhere).

import http from "node:http";
import https from "node:https";
import { redactUrl } from "./url.js";

/** One smart-HTTP request (the `{request}` client shape common to JS git clients). */
export interface GitHttpRequest {
  url: string;
  /** Default GET. */
  method?: string;
  headers?: Record<string, string>;
  /** POST body: bytes, or chunks (an array or an async iterable of them). */
  body?: AsyncIterableIterator<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array;
  signal?: AbortSignal;
}

export interface GitHttpResponse {
  /** The final URL, after same-origin redirects. */
  url: string;
  method?: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers?: Record<string, string>;
  body?: AsyncIterableIterator<Uint8Array>;
  statusCode: number;
  statusMessage: string;
}

export interface HttpClient {
  request(req: GitHttpRequest): Promise<GitHttpResponse>;
}

export interface GitHttpAuth {
  /** Bearer token; with `username` it is sent as Basic username:token instead. */
  token?: string;
  username?: string;
  password?: string;
}

export interface GitRequestInfo {
  method: string;
  /** Redacted URL (no credentials). */
  url: string;
  /** HTTP status, or 0 when no response arrived (network error, timeout, abort). */
  status: number;
}

export interface GitHttpOptions {
  auth?: GitHttpAuth;
  /** CA certificate(s), PEM, trusted for https in addition to Node's default roots (an internal CA beside public ones). */
  caPem?: string;
  /** Deadline per HTTP request, covering connect, response headers and the whole body. */
  timeoutMs: number;
  /** Largest response body accepted; default 256 MiB. */
  maxResponseBytes?: number;
  /** Called once per HTTP request actually sent (each redirect hop counts). */
  onRequest?: (info: GitRequestInfo) => void;
}

/** A request that may carry its own, smaller body limit (the ref listing uses one). */
export type LimitedGitHttpRequest = GitHttpRequest & { maxResponseBytes?: number };

/** What the git CLI needs to speak to the same server as this client does. Kept off the object. */
export interface GitTransportSettings {
  /** The Authorization header value, or undefined without credentials. */
  authorization?: string;
  caPem?: string;
  timeoutMs: number;
}
const transportSettings = new WeakMap<object, GitTransportSettings>();

/** The settings createGitHttp was given for `http`, or undefined for another plugin. */
export function transportSettingsOf(http: HttpClient): GitTransportSettings | undefined {
  return transportSettings.get(http);
}

/** The client plus close(), which drops the keep-alive sockets. */
export interface GitHttpClient extends HttpClient {
  close(): void;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const USER_AGENT = "git/plumber";

/** A failure of the HTTP transport itself (not an HTTP status): timeout, size limit, network, redirect. */
export class GitHttpError extends Error {
  constructor(
    message: string,
    readonly code: "timeout" | "too-large" | "network" | "redirect" | "aborted" | "invalid-url",
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GitHttpError";
  }
}

function authorizationHeader(auth: GitHttpAuth | undefined): string | undefined {
  if (!auth) return undefined;
  const { token, username, password } = auth;
  for (const [k, v] of Object.entries({ token, username, password })) {
    // eslint-disable-next-line no-control-regex -- NUL in a credential is what is refused
    if (v !== undefined && (typeof v !== "string" || /[\r\n\u0000]/.test(v))) {
      // Never echo the value.
      throw new Error(`git auth ${k} must be a string without line breaks or NUL`);
    }
  }
  if (token !== undefined && token !== "" && password !== undefined && password !== "") {
    throw new Error("git auth: give either token or password, not both");
  }
  if (token) {
    if (username) return `Basic ${Buffer.from(`${username}:${token}`, "utf8").toString("base64")}`;
    return `Bearer ${token}`;
  }
  if (username || password) {
    if (!username) throw new Error("git auth: password given without username");
    return `Basic ${Buffer.from(`${username}:${password ?? ""}`, "utf8").toString("base64")}`;
  }
  return undefined;
}

async function collectBody(body: GitHttpRequest["body"]): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  const chunks: Buffer[] = [];
  const b = body as unknown;
  if (b instanceof Uint8Array) return Buffer.from(b);
  if (Array.isArray(b)) {
    for (const c of b) chunks.push(Buffer.from(c as Uint8Array));
  } else if (typeof (b as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") {
    for await (const c of b as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  } else if (typeof (b as Iterable<Uint8Array>)[Symbol.iterator] === "function") {
    for (const c of b as Iterable<Uint8Array>) chunks.push(Buffer.from(c));
  } else {
    throw new TypeError("git http: unsupported request body");
  }
  return Buffer.concat(chunks);
}

function singleChunkIterator(buf: Buffer): AsyncIterableIterator<Uint8Array> {
  let done = buf.length === 0;
  const it: AsyncIterableIterator<Uint8Array> = {
    next() {
      if (done) return Promise.resolve({ done: true, value: undefined });
      done = true;
      return Promise.resolve({ done: false, value: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) });
    },
    return() {
      done = true;
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

function flattenHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

interface RawResponse {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Creates the client. Pass the result as `http` to GitRepo.
 * Throws synchronously if the auth settings are unusable (the message never contains them).
 */
export function createGitHttp(opts: GitHttpOptions): GitHttpClient {
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new Error(`git http: timeoutMs must be a positive number, got ${String(opts.timeoutMs)}`);
  }
  const maxBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (!Number.isFinite(maxBytes) || maxBytes <= 0) {
    throw new Error(`git http: maxResponseBytes must be a positive number`);
  }
  const authHeader = authorizationHeader(opts.auth);
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 8,
    // In addition to Node's roots (the CLI side gets the same bundle: see caBundleFile in repo.ts).
    ...(opts.caPem !== undefined ? { ca: [...tls.rootCertificates, opts.caPem] } : {}),
  });

  function once(
    method: string,
    target: URL,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
    maxBytes: number,
  ): Promise<RawResponse> {
    const shown = redactUrl(target.toString());
    const isHttps = target.protocol === "https:";
    const mod = isHttps ? https : http;
    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      let status = 0;
      const finish = (err: Error | undefined, res?: RawResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        try {
          opts.onRequest?.({ method, url: shown, status: res?.status ?? status });
        } catch {
          // a metrics hook must not break git
        }
        if (err) reject(err);
        else resolve(res!);
      };
      const req = mod.request(target, {
        method,
        headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
        agent: isHttps ? httpsAgent : httpAgent,
      });
      const timer = setTimeout(() => {
        finish(new GitHttpError(`git HTTP ${method} ${shown} timed out after ${opts.timeoutMs} ms`, "timeout", shown));
        req.destroy();
      }, opts.timeoutMs);
      const onAbort = () => {
        finish(new GitHttpError(`git HTTP ${method} ${shown} was aborted`, "aborted", shown));
        req.destroy();
      };
      if (signal) {
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener("abort", onAbort, { once: true });
      }
      req.on("error", (e: NodeJS.ErrnoException) => {
        const why = e.code ? `${e.code}: ${e.message}` : e.message;
        finish(new GitHttpError(`git HTTP ${method} ${shown} failed: ${why}`, "network", shown, { cause: e }));
      });
      req.on("response", (res) => {
        status = res.statusCode ?? 0;
        const declared = Number(res.headers["content-length"]);
        if (Number.isFinite(declared) && declared > maxBytes) {
          finish(
            new GitHttpError(
              `git HTTP ${method} ${shown}: response of ${declared} bytes exceeds the limit of ${maxBytes} bytes`,
              "too-large",
              shown,
            ),
          );
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            finish(
              new GitHttpError(
                `git HTTP ${method} ${shown}: response exceeds the limit of ${maxBytes} bytes`,
                "too-large",
                shown,
              ),
            );
            req.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on("error", (e) => {
          finish(new GitHttpError(`git HTTP ${method} ${shown} failed: ${e.message}`, "network", shown, { cause: e }));
        });
        res.on("aborted", () => {
          finish(new GitHttpError(`git HTTP ${method} ${shown}: connection closed mid-response`, "network", shown));
        });
        res.on("end", () => {
          if (!res.complete) {
            finish(new GitHttpError(`git HTTP ${method} ${shown}: connection closed mid-response`, "network", shown));
            return;
          }
          finish(undefined, {
            status,
            statusMessage: res.statusMessage ?? "",
            headers: res.headers,
            body: Buffer.concat(chunks, size),
          });
        });
      });
      req.end(body);
    });
  }

  async function request(r: LimitedGitHttpRequest): Promise<GitHttpResponse> {
    const limit = r.maxResponseBytes !== undefined ? Math.min(r.maxResponseBytes, maxBytes) : maxBytes;
    const method = (r.method ?? "GET").toUpperCase();
    let target = new URL(r.url);
    if (target.username || target.password) {
      // Credentials come from auth.*File only; refuse a URL that carries its own.
      throw new GitHttpError(`git HTTP: URL ${redactUrl(r.url)} embeds credentials`, "invalid-url", redactUrl(r.url));
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) {
      // Our Authorization wins over anything the caller set.
      if (authHeader !== undefined && k.toLowerCase() === "authorization") continue;
      headers[k] = v;
    }
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "user-agent")) headers["user-agent"] = USER_AGENT;
    if (authHeader !== undefined) headers["authorization"] = authHeader;
    const body = await collectBody(r.body);

    for (let hop = 0; ; hop++) {
      const res = await once(method, target, headers, body, r.signal, limit);
      const location = res.headers.location;
      const redirectable =
        location !== undefined &&
        (res.status === 307 ||
          res.status === 308 ||
          ((res.status === 301 || res.status === 302 || res.status === 303) && method === "GET"));
      if (!redirectable) {
        return {
          url: target.toString(),
          method,
          statusCode: res.status,
          statusMessage: res.statusMessage,
          headers: flattenHeaders(res.headers),
          body: singleChunkIterator(res.body),
        };
      }
      const next = new URL(location, target);
      if (next.origin !== target.origin) {
        throw new GitHttpError(
          `git HTTP ${method} ${redactUrl(target.toString())} redirects to another origin (${redactUrl(next.toString())}); ` +
            `refusing to follow with credentials, configure the final repository URL instead`,
          "redirect",
          redactUrl(target.toString()),
        );
      }
      if (hop + 1 >= MAX_REDIRECTS) {
        throw new GitHttpError(
          `git HTTP ${method} ${redactUrl(r.url)}: more than ${MAX_REDIRECTS} redirects`,
          "redirect",
          redactUrl(r.url),
        );
      }
      target = next;
    }
  }

  const client: GitHttpClient = {
    request,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
  transportSettings.set(client, { authorization: authHeader, caPem: opts.caPem, timeoutMs: opts.timeoutMs });
  return client;
}
