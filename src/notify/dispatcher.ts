// The dispatcher: routes notifications to the sinks that asked for their event and delivers them
// in the background. notify() never blocks, never throws: a dead sink costs the caller nothing.
// Each sink has its own bounded queue, delivered in order one request at a time, so a slow sink
// delays only itself. Failures are logged by sink name and status, never with the URL (a Slack
// webhook URL is a credential).

import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import http from "node:http";
import https from "node:https";
import { slackRequest } from "./slack.js";
import type { Notification, NotificationConfig, SinkRequest } from "./types.js";
import { webhookRequest } from "./webhook.js";

export interface DispatcherLog {
  warn(obj: object, msg: string): void;
}

export interface DispatcherOptions {
  log?: DispatcherLog;
  /** Per request, from connect to response headers. Default 5000. */
  timeoutMs?: number;
  /** Retries after the first attempt, on network errors, timeouts, 429 and 5xx. Default 3. */
  retries?: number;
  /** First retry delay; doubles each retry. Default 500. */
  backoffMs?: number;
  /** Longest wait between attempts, Retry-After included. Default 30000. */
  maxBackoffMs?: number;
  /** Pending notifications per sink; beyond it the oldest is dropped. Default 100. */
  maxQueue?: number;
}

export interface DispatchStats {
  delivered: number;
  failed: number;
  dropped: number;
}

export const DELIVERY_HEADER = "X-Plumber-Delivery";
const USER_AGENT = "plumber";

interface Delivery {
  n: Notification;
  req: SinkRequest;
}

interface SinkState {
  config: NotificationConfig;
  url?: URL;
  /** Why the URL is unusable (no URL in it). */
  invalid?: string;
  queue: Delivery[];
  busy: boolean;
}

type Attempt =
  | { kind: "status"; status: number; retryAfterMs?: number }
  | { kind: "error"; code: string }
  | { kind: "aborted" };

/** A problem with a sink URL, or undefined when usable. The message never contains the URL. */
export function sinkUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return "not a valid URL";
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return `unsupported scheme ${u.protocol.replace(/:$/, "")}: want https (or http)`;
  if (u.username || u.password) return "credentials in the URL are not supported";
  return undefined;
}

export class Dispatcher {
  readonly stats: DispatchStats = { delivered: 0, failed: 0, dropped: 0 };

  private readonly sinks: SinkState[];
  private readonly log: DispatcherLog;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxQueue: number;
  private readonly stop = new AbortController();
  private readonly idleWaiters = new Set<() => void>();
  private closed = false;

  constructor(sinks: NotificationConfig[], opts: DispatcherOptions = {}) {
    this.log = opts.log ?? { warn: () => {} };
    this.timeoutMs = positive(opts.timeoutMs, 5000);
    this.retries = Math.max(0, Math.floor(opts.retries ?? 3));
    this.backoffMs = Math.max(0, opts.backoffMs ?? 500);
    this.maxBackoffMs = Math.max(this.backoffMs, opts.maxBackoffMs ?? 30_000);
    this.maxQueue = Math.max(1, Math.floor(opts.maxQueue ?? 100));
    setMaxListeners(0, this.stop.signal);
    this.sinks = sinks.map((config) => {
      const invalid = sinkUrlProblem(config.url);
      return { config, queue: [], busy: false, ...(invalid ? { invalid } : { url: new URL(config.url.trim()) }) };
    });
  }

  /** Queues n for every sink whose `on` lists its event, and returns at once. Never throws. */
  notify(n: Notification): void {
    try {
      if (this.closed) return;
      for (const s of this.sinks) {
        try {
          if (!s.config.on.includes(n.event)) continue;
          const req = s.config.type === "slack" ? slackRequest(n) : webhookRequest(n, s.config.secret);
          req.headers["User-Agent"] = USER_AGENT;
          if (s.config.type === "webhook") req.headers[DELIVERY_HEADER] = randomUUID();
          if (s.queue.length >= this.maxQueue) {
            const old = s.queue.shift();
            this.stats.dropped++;
            this.log.warn({ sink: s.config.name, event: old?.n.event, queued: this.maxQueue }, "notification queue full: dropped the oldest notification");
          }
          s.queue.push({ n, req });
          if (!s.busy) {
            s.busy = true;
            // Deliver off the caller's stack: even creating the request is not its business.
            setImmediate(() => void this.pump(s));
          }
        } catch (err) {
          this.stats.failed++;
          this.log.warn({ sink: s.config.name, event: n.event, error: errorName(err) }, "notification could not be prepared");
        }
      }
    } catch {
      // notify() must never throw; a broken logger must not break the caller either.
    }
  }

  /** Resolves once every queued and in-flight notification is settled, or after timeoutMs. */
  flush(timeoutMs?: number): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      this.idleWaiters.add(done);
      if (timeoutMs !== undefined) timer = setTimeout(done, Math.max(0, timeoutMs));
    });
  }

  /**
   * Stops: aborts in-flight requests and retry waits, and drops what is queued (counted as
   * dropped). Later notify() calls do nothing. Call flush() first to give deliveries a chance.
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const s of this.sinks) {
        this.stats.dropped += s.queue.length;
        s.queue.length = 0;
      }
      this.stop.abort();
    }
    return this.flush();
  }

  private isIdle(): boolean {
    return this.sinks.every((s) => !s.busy && s.queue.length === 0);
  }

  private async pump(s: SinkState): Promise<void> {
    try {
      for (let d = s.queue.shift(); d; d = s.queue.shift()) {
        const outcome = await this.deliver(s, d);
        this.stats[outcome]++;
      }
    } catch (err) {
      this.safeWarn({ sink: s.config.name, error: errorName(err) }, "notification delivery crashed");
    } finally {
      s.busy = false;
      if (this.isIdle()) for (const w of [...this.idleWaiters]) w();
    }
  }

  private async deliver(s: SinkState, d: Delivery): Promise<keyof DispatchStats> {
    const sink = s.config.name;
    const event = d.n.event;
    if (!s.url) {
      this.safeWarn({ sink, event, error: s.invalid }, "notification failed: the sink URL is unusable");
      return "failed";
    }
    for (let attempt = 0; ; attempt++) {
      if (this.stop.signal.aborted) return "dropped";
      const a = await post(s.url, d.req, this.timeoutMs, this.stop.signal);
      if (a.kind === "aborted") return "dropped";
      if (a.kind === "status" && a.status >= 200 && a.status < 300) return "delivered";
      const retryable = a.kind === "error" || a.status === 429 || a.status >= 500;
      const what = a.kind === "status" ? { status: a.status } : { error: a.code };
      if (!retryable || attempt >= this.retries) {
        this.safeWarn({ sink, type: s.config.type, event, ...what, attempts: attempt + 1 }, "notification failed");
        return "failed";
      }
      let delay = Math.min(this.backoffMs * 2 ** attempt, this.maxBackoffMs);
      if (a.kind === "status" && a.retryAfterMs !== undefined) delay = Math.max(delay, Math.min(a.retryAfterMs, this.maxBackoffMs));
      if (!(await sleep(delay, this.stop.signal))) return "dropped";
    }
  }

  private safeWarn(obj: object, msg: string): void {
    try {
      this.log.warn(obj, msg);
    } catch {
      // a failing logger must not fail deliveries
    }
  }
}

function positive(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt;
}

/** An error's code or name: never its message, which may quote the URL. */
function errorName(err: unknown): string {
  if (err && typeof err === "object") {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code) return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === "string" && name) return name;
  }
  return "Error";
}

/** Retry-After as delta-seconds or an HTTP date, in ms. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Resolves true after ms, or false as soon as signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** One POST. Settles on the response status, a network error, the timeout or the abort. */
function post(url: URL, req: SinkRequest, timeoutMs: number, signal: AbortSignal): Promise<Attempt> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (a: Attempt): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      resolve(a);
    };
    const mod = url.protocol === "https:" ? https : http;
    const r = mod.request(
      url,
      { method: "POST", headers: { ...req.headers, "Content-Length": String(req.body.length) } },
      (res) => {
        res.on("error", () => {});
        // The body is not needed; drain it so the socket can be reused, within the same deadline.
        res.on("close", () => clearTimeout(timer));
        res.resume();
        const status = res.statusCode ?? 0;
        const after = retryAfterMs(res.headers["retry-after"]);
        settle(after === undefined ? { kind: "status", status } : { kind: "status", status, retryAfterMs: after });
      },
    );
    const timer = setTimeout(() => {
      r.destroy();
      settle({ kind: "error", code: "ETIMEDOUT" });
    }, timeoutMs);
    const onAbort = (): void => {
      clearTimeout(timer);
      r.destroy();
      settle({ kind: "aborted" });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    r.on("error", (err) => {
      clearTimeout(timer);
      settle({ kind: "error", code: errorName(err) });
    });
    r.end(req.body);
  });
}
