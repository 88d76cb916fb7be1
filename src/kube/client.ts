import http from "node:http";
import https from "node:https";
import { KubeConfig } from "./kubeconfig.js";
import { sleep } from "../util/pool.js";

/**
 * plumber's own HTTP layer to the apiserver. kubeconfig.ts loads kubeconfig, auth and TLS; the
 * requests themselves go out here so apply bodies reach the server unchanged (client-node's
 * typed patch() drops fields it does not model) and so every request can be counted.
 */

export type Verb = "get" | "list" | "create" | "update" | "patch" | "delete";

export interface KubeRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | undefined>;
  body?: string;
  contentType?: string;
  accept?: string;
  /** Marks a GET of a collection, so it is counted as a list. */
  list?: boolean;
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
  /** The server's Warning headers (RFC 7234 text only), e.g. deprecated API versions. */
  warnings: string[];
}

export interface RawResponse {
  status: number;
  text: string;
  contentType: string;
  warnings: string[];
  /** Seconds the server asked us to wait (Retry-After), if it said. */
  retryAfterSec?: number;
}

export class RequestStats {
  total = 0;
  writes = 0;
  dryRuns = 0;
  readonly byVerb: Record<Verb, number> = { get: 0, list: 0, create: 0, update: 0, patch: 0, delete: 0 };

  record(req: KubeRequest): void {
    this.total++;
    const verb = verbOf(req);
    this.byVerb[verb]++;
    if (req.method !== "GET") {
      if (req.query?.dryRun === "All") this.dryRuns++;
      else this.writes++;
    }
  }

  snapshot(): { total: number; writes: number; dryRuns: number; byVerb: Record<Verb, number> } {
    return { total: this.total, writes: this.writes, dryRuns: this.dryRuns, byVerb: { ...this.byVerb } };
  }
}

function verbOf(req: KubeRequest): Verb {
  switch (req.method) {
    case "GET":
      return req.list ? "list" : "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
  }
}

/** A Kubernetes API error with the server's Status reason and message. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly request: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  /** Worth retrying later: the server or the network, not the request, is at fault. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export interface ClusterTarget {
  kubeconfig?: string;
  context?: string;
}

/** Default: kubeconfig file, then KUBECONFIG, then in-cluster. Never a silent ~/.kube/config guess. */
export function loadKubeConfig(target: ClusterTarget, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (target.kubeconfig) kc.loadFromFile(target.kubeconfig);
  else if (env.KUBECONFIG) {
    const first = env.KUBECONFIG.split(":").find((p) => p.length > 0);
    if (!first) throw new Error("KUBECONFIG is set but empty");
    kc.loadFromFile(first);
  } else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else throw new Error("no cluster credentials: set clusters[].kubeconfig, KUBECONFIG, or run in a pod");
  if (target.context) {
    if (!kc.getContextObject(target.context)) throw new Error(`kubeconfig has no context "${target.context}"`);
    kc.setCurrentContext(target.context);
  }
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig names no current cluster");
  return kc;
}

export interface KubeClientOptions {
  timeoutMs?: number;
  maxSockets?: number;
  /** How retries wait (tests inject a clock); default: a real timer. */
  sleep?: (ms: number) => Promise<void>;
}

const HEADER_TTL_MS = 30_000;
const RETRIES = 4;
const RETRY_BASE_MS = 100;
/** A server asking for longer than this is waited on this long, then asked again (bounded hold-up). */
export const MAX_RETRY_AFTER_MS = 30_000;

/** The server's Retry-After when it gave one (bounded), else exponential backoff. */
export function retryDelayMs(attempt: number, retryAfterSec: number | undefined): number {
  if (retryAfterSec !== undefined) return Math.min(retryAfterSec * 1000, MAX_RETRY_AFTER_MS);
  return RETRY_BASE_MS * 2 ** attempt;
}

export class KubeClient {
  readonly stats = new RequestStats();
  /**
   * Consulted before every write (a non-GET that is not a dry-run): a returned reason refuses the
   * request before it is sent (KubeApiError, reason WriteRefused). Leader election and shutdown
   * close it; unset, everything goes out.
   */
  writeGate?: (req: KubeRequest) => string | undefined;
  readonly server: URL;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private headers: Record<string, string> = {};
  private headersAt = 0;

  private constructor(
    private readonly kc: KubeConfig,
    tls: https.AgentOptions,
    opts: KubeClientOptions,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig names no current cluster");
    this.server = new URL(cluster.server);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.sleep = opts.sleep ?? ((ms) => sleep(ms));
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 32 };
    this.agent = this.server.protocol === "https:" ? new https.Agent({ ...tls, ...agentOpts }) : new http.Agent(agentOpts);
  }

  static async create(kc: KubeConfig, opts: KubeClientOptions = {}): Promise<KubeClient> {
    const o: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    const tls: https.AgentOptions = { ca: o.ca, cert: o.cert, key: o.key, pfx: o.pfx, passphrase: o.passphrase };
    if (o.rejectUnauthorized === false) tls.rejectUnauthorized = false;
    const client = new KubeClient(kc, tls, opts);
    client.setHeaders(o);
    return client;
  }

  private setHeaders(o: https.RequestOptions): void {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.headers ?? {})) if (typeof v === "string") h[k] = v;
    if (o.auth) h.Authorization = "Basic " + Buffer.from(o.auth).toString("base64");
    this.headers = h;
    this.headersAt = Date.now();
  }

  private async authHeaders(): Promise<Record<string, string>> {
    // Tokens from files and exec plugins rotate; re-read them now and then, not per request.
    if (Date.now() - this.headersAt > HEADER_TTL_MS) {
      const o: https.RequestOptions = {};
      await this.kc.applyToHTTPSOptions(o);
      this.setHeaders(o);
    }
    return this.headers;
  }

  async request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    const res = await this.send(req);
    if (res.status >= 400) throw toApiError(res.status, res.text, `${req.method} ${req.path}`);
    return { status: res.status, body: (res.text ? JSON.parse(res.text) : undefined) as T, warnings: res.warnings };
  }

  /** Like request, but a 404 is undefined rather than an error. */
  async getOptional<T = unknown>(path: string): Promise<T | undefined> {
    const res = await this.send({ method: "GET", path });
    if (res.status === 404) return undefined;
    if (res.status >= 400) throw toApiError(res.status, res.text, `GET ${path}`);
    return JSON.parse(res.text) as T;
  }

  /**
   * Retries what the server said it could not take right now (429, 503 — e.g. "storage is
   * (re)initializing" just after start); such a request was not carried out, so a retry is safe.
   * The wait is the server's Retry-After when it sends one (API priority and fairness does), at
   * most MAX_RETRY_AFTER_MS, else exponential backoff.
   */
  private async send(req: KubeRequest): Promise<RawResponse> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.raw(req);
      if ((res.status !== 429 && res.status !== 503) || attempt >= RETRIES) return res;
      await this.sleep(retryDelayMs(attempt, res.retryAfterSec));
    }
  }

  async raw(req: KubeRequest): Promise<RawResponse> {
    const url = new URL(this.server.href.replace(/\/$/, "") + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = {
      ...(await this.authHeaders()),
      Accept: req.accept ?? "application/json",
      "User-Agent": "plumber",
    };
    if (req.body !== undefined) {
      headers["Content-Type"] = req.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(req.body));
    }
    if (this.writeGate && req.method !== "GET" && req.query?.dryRun !== "All") {
      const refused = this.writeGate(req);
      if (refused) throw new KubeApiError(0, "WriteRefused", `${req.method} ${req.path} not sent: ${refused}`, req.path);
    }
    this.stats.record(req);
    const mod = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const r = mod.request(url, { method: req.method, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
            contentType: String(res.headers["content-type"] ?? ""),
            warnings: parseWarnings(res.rawHeaders),
            retryAfterSec: parseRetryAfter(res.headers["retry-after"]),
          }),
        );
        res.on("error", reject);
      });
      r.on("timeout", () => r.destroy(new KubeApiError(0, "Timeout", `${req.method} ${req.path}: no answer in ${this.timeoutMs} ms`, req.path)));
      r.on("error", (e) =>
        reject(e instanceof KubeApiError ? e : new KubeApiError(0, "ConnectionFailed", `${req.method} ${url.host}${req.path}: ${e.message}`, req.path)),
      );
      if (req.body !== undefined) r.write(req.body);
      r.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function toApiError(status: number, text: string, request: string): KubeApiError {
  let reason = "Unknown";
  let message = text.slice(0, 500);
  let details: unknown;
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string; details?: unknown };
    reason = s.reason ?? reason;
    message = s.message ?? message;
    details = s.details;
  } catch {
    // not a Status object: keep the raw text
  }
  return new KubeApiError(status, reason, message, request, details);
}

/**
 * Warning headers as the apiserver sends them: `299 - "text"` (RFC 7234 warn-code, agent, quoted
 * text), one header per warning, possibly several in one header separated by commas.
 */
export function parseWarnings(rawHeaders: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== "warning") continue;
    const value = rawHeaders[i + 1] as string;
    const re = /\s*(\d{3})\s+(\S+)\s+"((?:[^"\\]|\\.)*)"(?:\s+"[^"]*")?\s*(?:,|$)/gy;
    let m: RegExpExecArray | null;
    let matched = false;
    while ((m = re.exec(value)) !== null) {
      matched = true;
      out.push((m[3] as string).replace(/\\(.)/g, "$1"));
      if (re.lastIndex >= value.length) break;
    }
    if (!matched && value.trim()) out.push(value.trim());
  }
  return out;
}

/** Retry-After as delta-seconds (what the apiserver sends); an HTTP date is honoured too. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\s*\d+\s*$/.test(s)) return Number(s);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}
