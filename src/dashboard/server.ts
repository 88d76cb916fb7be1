// The dashboard's HTTP server (node:http): pages from the last read of the fleet (refreshed every
// refreshMs, pushed as SSE `update` events), sign-in with a bearer token, and actions authorised by
// the target cluster (TokenReview, then SubjectAccessReview) through the CLI's own code paths.
//
// CSRF: a browser's action carries the session cookie (HttpOnly, SameSite=Strict), the session's
// CSRF token in the form, and an Origin that is this server; a script's carries
// `Authorization: Bearer` and no cookie, which a cross-site page cannot make a browser send.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { approve, resume, retry, rollback, type ActionResult } from "../actions/control.js";
import { findRelease, releaseNow } from "../actions/release.js";
import type { KubeClient } from "../kube/client.js";
import type { Logger } from "../log.js";
import type { Runtime } from "../reconcile/runtime.js";
import { parseListenAddr } from "../service/http.js";
import { controlObjectName } from "../state/control.js";
import { releaseStateName } from "../state/release.js";
import { appPageData } from "./app-page.js";
import { DASHBOARD_CSS, DASHBOARD_JS } from "./assets.js";
import { identify, mayAccess, type AccessCheck, type Identity } from "./auth.js";
import { FleetReader, type Snapshot } from "./collect.js";
import { fleetEvents, fleetRows, parseFilter, releaseView } from "./model.js";
import { appPage, eventsPage, fleetPage, loginPage, messagePage, releasesPage, type PageContext } from "./pages.js";
import { cookieValue, csrfMatches, SESSION_COOKIE, Sessions, type Session } from "./sessions.js";

export interface DashboardOptions {
  rt: Runtime;
  /** host:port, :port or port (port 0 picks a free one). */
  listen: string;
  /** Read-only pages without a token (config dashboard.public). Reads on a loopback address are public anyway. */
  publicReads: boolean;
  /** How often the fleet is read again (and live updates pushed). */
  refreshMs: number;
  log: Logger;
  /** Largest request body accepted (sign-in, actions). */
  maxBodyBytes?: number;
}

export interface Dashboard {
  /** http://host:port/ */
  url: string;
  port: number;
  /** Reads the fleet now and pushes an update if it changed. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 16 * 1024;
const MAX_URL = 4096;
const MAX_STREAMS = 200;
const HEARTBEAT_MS = 15_000;
const IDENTITY_CACHE_MS = 60_000;

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  // Not no-referrer: under it Chromium sends `Origin: null` on a form POST, and the Origin check
  // would refuse every sign-in and action. same-origin still sends nothing to other sites.
  "Referrer-Policy": "same-origin",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
  "Cache-Control": "no-store",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function isLoopbackHost(host: string | undefined): boolean {
  return host !== undefined && (host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) return Promise.reject(new HttpError(413, `request body over ${limit} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new HttpError(413, `request body over ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function formOf(req: http.IncomingMessage, body: string): URLSearchParams {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
  if (type === "application/json" && body) {
    const v = JSON.parse(body) as Record<string, unknown>;
    return new URLSearchParams(Object.entries(v).filter(([, x]) => typeof x === "string") as [string, string][]);
  }
  return new URLSearchParams(body);
}

type Caller = { kind: "session"; session: Session } | { kind: "bearer"; token: string } | { kind: "anonymous" };

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const { rt, log } = opts;
  const { host, port } = parseListenAddr(opts.listen);
  const publicReads = opts.publicReads || isLoopbackHost(host);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const reader = new FleetReader(rt, log);
  const sessions = new Sessions();
  const streams = new Set<http.ServerResponse>();
  const identities = new Map<string, { id: Identity | undefined; at: number }>();
  const clusterNames = [...new Set(rt.config.apps.map((a) => a.cluster))].sort();
  let snap: Snapshot = await reader.read();
  let version = 1;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  // Reads cost API requests (a state GET and a drift LIST pass per app): a dashboard nobody looks at
  // reads nothing, and a page asked for after a quiet spell waits for one read instead of showing it.
  let readAt = performance.now();
  let viewedAt = Number.NEGATIVE_INFINITY;
  const watched = (): boolean => streams.size > 0 || performance.now() - viewedAt < 2 * opts.refreshMs;

  const broadcast = (): void => {
    for (const s of streams) s.write(`event: update\ndata: ${JSON.stringify({ version })}\n\n`);
  };
  const refresh = (): Promise<void> => {
    reading ??= reader
      .read()
      .then((next) => {
        readAt = performance.now();
        if (next.digest !== snap.digest) {
          version++;
          snap = next;
          broadcast();
        } else snap = { ...snap, at: next.at };
      })
      .catch((e: unknown) => log.warn({ err: message(e) }, "dashboard: reading the fleet failed"))
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  const schedule = (): void => {
    if (closed) return;
    timer = setTimeout(() => void (watched() ? refresh() : Promise.resolve()).then(schedule), opts.refreshMs);
    timer.unref();
  };
  schedule();
  const heartbeat = setInterval(() => {
    for (const s of streams) s.write(": ping\n\n");
  }, HEARTBEAT_MS);
  heartbeat.unref();

  const clientOf = (cluster: string): KubeClient => {
    const c = rt.clusters.get(cluster);
    if (!c) throw new HttpError(404, `cluster ${cluster} is not connected`);
    return c.client;
  };

  /** The token's user in `cluster`, or in any of the fleet's clusters (sign-in); cached a minute by the token's digest. */
  const whoIs = async (token: string, cluster?: string): Promise<Identity | undefined> => {
    const key = createHash("sha256").update(`${cluster ?? "*"}\0${token}`).digest("hex");
    const hit = identities.get(key);
    if (hit && Date.now() - hit.at < IDENTITY_CACHE_MS) return hit.id;
    let id: Identity | undefined;
    for (const name of cluster ? [cluster] : [...rt.clusters.keys()]) {
      id = await identify(clientOf(name), token);
      if (id) break;
    }
    if (identities.size > 1000) identities.clear();
    identities.set(key, { id, at: Date.now() });
    return id;
  };

  const callerOf = (req: http.IncomingMessage): Caller => {
    const auth = req.headers.authorization;
    if (auth?.startsWith("Bearer ")) return { kind: "bearer", token: auth.slice(7).trim() };
    const session = sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
    return session ? { kind: "session", session } : { kind: "anonymous" };
  };

  const send = (res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Content-Length": String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const sendHtml = (res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => send(res, status, "text/html; charset=utf-8", body, headers);
  const sendJson = (res: http.ServerResponse, status: number, v: unknown): void => send(res, status, "application/json; charset=utf-8", JSON.stringify(v));
  const redirect = (res: http.ServerResponse, to: string, headers: Record<string, string> = {}): void => {
    res.writeHead(303, { ...SECURITY_HEADERS, Location: to, "Content-Length": "0", ...headers });
    res.end();
  };

  const pageContext = (caller: Caller): PageContext => {
    const ctx: PageContext = { version, readAt: snap.at };
    if (caller.kind === "session") {
      ctx.user = caller.session.identity.username;
      ctx.csrf = caller.session.csrf;
      if (caller.session.flash) {
        ctx.flash = caller.session.flash;
        delete caller.session.flash;
      }
    }
    return ctx;
  };

  /** Reads need a token unless public; a bearer token must be one the cluster accepts. */
  const mayRead = async (caller: Caller): Promise<boolean> => {
    if (publicReads || caller.kind === "session") return true;
    if (caller.kind === "bearer") return (await whoIs(caller.token)) !== undefined;
    return false;
  };

  /** A browser's POST must come from this server's own pages. */
  const sameOrigin = (req: http.IncomingMessage): boolean => {
    if (req.headers["sec-fetch-site"] === "cross-site") return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    const h = req.headers.host ?? "";
    return origin === `http://${h}` || origin === `https://${h}`;
  };

  const act = async (req: http.IncomingMessage, res: http.ServerResponse, caller: Caller, check: AccessCheck, cluster: string, back: string, run: (by: string, form: URLSearchParams) => Promise<ActionResult>): Promise<void> => {
    const form = formOf(req, await readBody(req, maxBody));
    let token: string;
    if (caller.kind === "bearer") token = caller.token;
    else if (caller.kind === "session") {
      if (!sameOrigin(req) || !csrfMatches(caller.session, form.get("csrf") ?? undefined)) throw new HttpError(403, "this form did not come from this dashboard's page (CSRF check failed): reload the page and try again");
      token = caller.session.token;
    } else throw new HttpError(401, "sign in with a bearer token first");
    const who = await whoIs(token, cluster);
    if (!who) throw new HttpError(401, `cluster ${cluster} does not accept this token`);
    if (!(await mayAccess(clientOf(cluster), who, check))) {
      log.info({ user: who.username, ...check }, "dashboard: action refused by the cluster");
      throw new HttpError(403, `${who.username} may not ${check.verb} ${check.resource} ${check.name} in namespace ${check.namespace} of cluster ${cluster}`);
    }
    const result = await run(who.username, form);
    log.info({ user: who.username, ok: result.ok }, `dashboard: ${result.message}`);
    void refresh();
    if (caller.kind === "bearer") return sendJson(res, result.ok ? 200 : 409, { ...result, by: who.username });
    caller.session.flash = result.message;
    redirect(res, back);
  };

  const appAction = async (req: http.IncomingMessage, res: http.ServerResponse, caller: Caller, name: string, action: string): Promise<void> => {
    const app = rt.apps.find((a) => a.app.name === name);
    if (!app) throw new HttpError(404, `no app named ${name}`);
    if (!["approve", "rollback", "resume", "retry"].includes(action)) throw new HttpError(404, `no action ${action}`);
    const check: AccessCheck = { namespace: rt.config.state.namespace, verb: "update", group: "", resource: "configmaps", name: controlObjectName(name) };
    await act(req, res, caller, check, app.app.cluster, `/apps/${encodeURIComponent(name)}`, async (by, form) => {
      await app.reloadState();
      switch (action) {
        case "approve": {
          const rev = form.get("revision") ?? (await app.currentState()).pendingRevision;
          if (!rev) return { ok: false, message: `${name}: no revision waits for approval` };
          return approve(rt, app, rev, { by });
        }
        case "rollback":
          return rollback(rt, app, form.get("revision") || undefined, { by });
        case "resume":
          return resume(rt, app, { by });
        default:
          return retry(rt, app, { by });
      }
    });
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if ((req.url ?? "").length > MAX_URL) throw new HttpError(414, "URL too long");
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    const path = url.pathname;
    const caller = callerOf(req);
    if (path === "/assets/dashboard.css") return send(res, 200, "text/css; charset=utf-8", DASHBOARD_CSS, { "Cache-Control": "public, max-age=300" });
    if (path === "/assets/dashboard.js") return send(res, 200, "text/javascript; charset=utf-8", DASHBOARD_JS, { "Cache-Control": "public, max-age=300" });
    if (path === "/healthz") return send(res, 200, "text/plain; charset=utf-8", "ok\n");

    if (req.method === "POST") {
      if (path === "/login") {
        if (!sameOrigin(req)) throw new HttpError(403, "sign-in from another site refused");
        const token = (formOf(req, await readBody(req, maxBody)).get("token") ?? "").trim();
        const who = token ? await whoIs(token) : undefined;
        if (!who) return sendHtml(res, 401, loginPage({ version }, "No cluster of this dashboard accepts that token."));
        const s = sessions.create(token, who);
        return redirect(res, "/", { "Set-Cookie": `${SESSION_COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800` });
      }
      if (path === "/logout") {
        const form = formOf(req, await readBody(req, maxBody));
        if (caller.kind === "session" && sameOrigin(req) && csrfMatches(caller.session, form.get("csrf") ?? undefined)) sessions.delete(caller.session.id);
        return redirect(res, "/", { "Set-Cookie": `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
      }
      const m = /^\/apps\/([^/]+)\/([a-z]+)$/.exec(path);
      if (m) return appAction(req, res, caller, decodeURIComponent(m[1] as string), m[2] as string);
      const r = /^\/releases\/([^/]+)\/run$/.exec(path);
      if (r) {
        const name = decodeURIComponent(r[1] as string);
        const s = findRelease(rt, name);
        if (!s) throw new HttpError(404, `no release named ${name}`);
        const check: AccessCheck = { namespace: rt.config.state.namespace, verb: "update", group: "", resource: "configmaps", name: releaseStateName(name) };
        return act(req, res, caller, check, s.release.cluster, "/releases", (by) => releaseNow(rt, name, { by }));
      }
      throw new HttpError(404, "not found");
    }
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "method not allowed");

    if (path === "/login") return sendHtml(res, 200, loginPage(pageContext(caller)));
    if (!(await mayRead(caller))) {
      if (path.startsWith("/api/")) return sendJson(res, 401, { error: "a bearer token is needed" });
      return redirect(res, "/login");
    }
    viewedAt = performance.now();
    if (path !== "/api/stream" && viewedAt - readAt > opts.refreshMs) await refresh();
    const now = new Date();
    if (path === "/api/stream") {
      if (req.method !== "GET") throw new HttpError(405, "the stream is GET only");
      return stream(req, res);
    }
    if (path === "/api/fleet") return sendJson(res, 200, { version, readAt: snap.at, rows: fleetRows(snap.apps, snap.commits, now, parseFilter(url.searchParams, clusterNames)) });
    if (path === "/") {
      const filter = parseFilter(url.searchParams, clusterNames);
      return sendHtml(res, 200, fleetPage(pageContext(caller), fleetRows(snap.apps, snap.commits, now, filter), filter, clusterNames, snap.apps.length));
    }
    if (path === "/releases") return sendHtml(res, 200, releasesPage(pageContext(caller), snap.releases.map((r) => releaseView(r))));
    if (path === "/events") return sendHtml(res, 200, eventsPage(pageContext(caller), fleetEvents(snap.apps, snap.releases)));
    const a = /^\/apps\/([^/]+)$/.exec(path);
    if (a) {
      const data = await appPageData(rt, snap, decodeURIComponent(a[1] as string), now);
      if (!data) throw new HttpError(404, `no app named ${decodeURIComponent(a[1] as string)}`);
      return sendHtml(res, 200, appPage(pageContext(caller), data));
    }
    throw new HttpError(404, "not found");
  };

  const stream = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (streams.size >= MAX_STREAMS) throw new HttpError(503, "too many live streams");
    res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive" });
    res.write(`retry: 3000\n\nevent: update\ndata: ${JSON.stringify({ version })}\n\n`);
    streams.add(res);
    req.on("close", () => streams.delete(res));
  };

  const server = http.createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000 }, (req, res) => {
    route(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : e instanceof SyntaxError ? 400 : 500;
      if (status === 500) log.warn({ err: message(e), path: req.url }, "dashboard: request failed");
      if (res.headersSent) return res.end();
      const caller = callerOf(req);
      const wantsJson = caller.kind === "bearer" || (req.url ?? "").startsWith("/api/");
      const headers: Record<string, string> = status === 413 ? { Connection: "close" } : {};
      if (wantsJson) return send(res, status, "application/json; charset=utf-8", JSON.stringify({ error: message(e) }), headers);
      const title = status === 403 ? "Forbidden" : status === 401 ? "Sign in needed" : status === 404 ? "Not found" : "Error";
      sendHtml(res, status, messagePage(pageContext(caller), title, message(e), status === 403 ? "forbidden" : "error"), headers);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => reject(new Error(`dashboard: cannot listen on ${opts.listen}: ${e.code ?? e.message}`));
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}/`,
    port: addr.port,
    refresh,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        if (timer) clearTimeout(timer);
        clearInterval(heartbeat);
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
