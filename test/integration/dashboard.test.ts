// The dashboard against the real control plane and git server: pages served from the cluster's
// state, filters, the pending diff with Secrets masked, live updates over SSE, security headers,
// bounded bodies, and actions authorised by the cluster (TokenReview + SubjectAccessReview) with
// ServiceAccount tokens from the TokenRequest API. No browser here (test/browser/ has those).
import { execFile } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { startDashboard, type Dashboard } from "../../src/dashboard/server.js";
import type { KubeClient } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { buildRuntime, type Runtime } from "../../src/reconcile/runtime.js";
import { ControlStore, controlObjectName } from "../../src/state/control.js";
import { StateStore } from "../../src/state/store.js";
import { findRepoRoot } from "../bed/paths.js";
import { PlumberProcess } from "../bed/plumber.js";
import { uniqueName } from "../setup/env.js";
import { configMap, harness, type AppOptions, type Harness } from "./support.js";

const SECRET_VALUE = "hunter2-very-secret";
const FILES = {
  "a.yaml": configMap("a", { v: "1" }),
  "s.yaml": `apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: ${SECRET_VALUE}\n`,
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Bed {
  h: Harness;
  rt: Runtime;
  d: Dashboard;
  base: string;
}

/** An app (manual approval unless told otherwise), one cycle run (so it waits for approval, or is applied), and a dashboard on its own runtime. */
async function bed(opts: { listen?: string; publicReads?: boolean; app?: AppOptions["app"]; refreshMs?: number } = {}): Promise<Bed> {
  const h = await harness(FILES, { app: { approval: "manual", ...(opts.app ?? {}) } });
  cleanups.push(() => h.close());
  expect((await h.cycle()).kind).toBe(opts.app?.approval === "none" ? "applied" : "held");
  const rt = await buildRuntime(await loadConfig(h.configFile), { log: silentLogger(), cacheDir: join(h.dir, "dash-cache") });
  cleanups.push(() => rt.close());
  // A refresh an hour away: the tests move the dashboard with d.refresh(), never by waiting.
  const d = await startDashboard({ rt, listen: opts.listen ?? "127.0.0.1:0", publicReads: opts.publicReads ?? false, refreshMs: opts.refreshMs ?? 3600_000, log: silentLogger() });
  cleanups.push(() => d.close());
  return { h, rt, d, base: `http://127.0.0.1:${d.port}` };
}

/** A ServiceAccount token (TokenRequest API); with `grant`, a Role letting it update the app's control record (or the records named). */
async function saToken(kube: KubeClient, h: Harness, grant: boolean, records: string[] = [controlObjectName(h.app)]): Promise<{ token: string; username: string }> {
  const sa = uniqueName("captain");
  const post = (path: string, body: object): Promise<unknown> => kube.request({ method: "POST", path, body: JSON.stringify(body) });
  await post(`/api/v1/namespaces/${h.namespace}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa } });
  if (grant) {
    const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${h.stateNamespace}`;
    await post(`${rbac}/roles`, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: sa },
      rules: [{ apiGroups: [""], resources: ["configmaps"], resourceNames: records, verbs: ["get", "update"] }],
    });
    await post(`${rbac}/rolebindings`, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: sa },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: sa },
      subjects: [{ kind: "ServiceAccount", name: sa, namespace: h.namespace }],
    });
  }
  const tr = await kube.request<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${h.namespace}/serviceaccounts/${sa}/token`,
    body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } }),
  });
  return { token: tr.body.status.token, username: `system:serviceaccount:${h.namespace}:${sa}` };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { headers, redirect: "manual" });
}

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers }, redirect: "manual" });
}

/** The `update` events of an SSE stream, one at a time. */
function sse(url: string): { next(): Promise<number>; close(): void } {
  const versions: number[] = [];
  const waiting: ((v: number) => void)[] = [];
  let buf = "";
  const req = http.get(url, (res) => {
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buf += chunk;
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!/^event: update$/m.test(block) || !data) continue;
        const v = (JSON.parse(data) as { version: number }).version;
        const w = waiting.shift();
        if (w) w(v);
        else versions.push(v);
      }
    });
  });
  req.on("error", () => {});
  return {
    next: () => {
      const v = versions.shift();
      return v !== undefined ? Promise.resolve(v) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => req.destroy(),
  };
}

describe("dashboard", () => {
  it("serves the fleet (filters, problems first), the app page with the pending diff (Secrets masked), releases and events, with security headers", async () => {
    const { h, base } = await bed();
    const rev = await h.repo.head("main");

    const fleet = await get(`${base}/`);
    expect(fleet.status).toBe(200);
    expect(fleet.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(fleet.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(fleet.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    expect(fleet.headers.get("x-content-type-options")).toBe("nosniff");
    expect(fleet.headers.get("referrer-policy")).toBe("same-origin");
    const page = await fleet.text();
    expect(page).toContain(`data-testid="fleet-row" data-app="${h.app}" data-cluster="local" data-phase="WaitingApproval"`);
    expect(page).toContain(`<code>${rev.slice(0, 12)}</code>`);
    expect(page).not.toMatch(/<script>|<style>|https?:\/\/(?!127\.0\.0\.1)/);

    // Filters: by state and by cluster; an unknown value shows everything.
    expect(await (await get(`${base}/?state=WaitingApproval`)).text()).toContain(`data-app="${h.app}"`);
    expect(await (await get(`${base}/?state=Ready`)).text()).not.toContain(`data-app="${h.app}"`);
    expect(await (await get(`${base}/?cluster=elsewhere`)).text()).toContain(`data-app="${h.app}"`);
    const rows = (await (await get(`${base}/api/fleet?state=WaitingApproval`)).json()) as { rows: { app: string; phase: string; pending: string }[] };
    expect(rows.rows).toEqual([expect.objectContaining({ app: h.app, phase: "WaitingApproval", pending: rev.slice(0, 12) })]);

    const app = await (await get(`${base}/apps/${h.app}`)).text();
    expect(app).toContain(`<code data-testid="pending-revision">${rev.slice(0, 12)}</code>: 2 to create`);
    expect(app).toContain(`+++ merged/ConfigMap/${h.namespace}/a`);
    expect(app).toContain(`merged/Secret/${h.namespace}/creds`);
    expect(app).not.toContain(SECRET_VALUE);
    // No token, no button.
    expect(app).toContain('data-testid="no-actions"');
    expect(app).not.toContain('data-testid="action-approve"');

    expect((await get(`${base}/releases`)).status).toBe(200);
    const events = await (await get(`${base}/events`)).text();
    expect(events).toContain(`data-testid="event" data-kind="approval" data-subject="${h.app}"`);
    expect((await get(`${base}/assets/dashboard.js`)).headers.get("content-type")).toContain("text/javascript");
    expect((await get(`${base}/apps/nope`)).status).toBe(404);
  });

  it("approve: an authorised ServiceAccount moves the app and history says who; an unauthorised one gets 403 and nothing is recorded", async () => {
    const { h, base } = await bed();
    const rev = await h.repo.head("main");
    const control = new ControlStore(h.kube, h.stateNamespace);
    const captain = await saToken(h.kube, h, true);
    const stranger = await saToken(h.kube, h, false);

    // No token at all: refused before anything is looked at.
    expect((await post(`${base}/apps/${h.app}/approve`, `revision=${rev}`)).status).toBe(401);
    const refused = await post(`${base}/apps/${h.app}/approve`, `revision=${rev}`, { Authorization: `Bearer ${stranger.token}` });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: string }).error).toContain(`${stranger.username} may not update configmaps ${controlObjectName(h.app)}`);
    expect(await control.load(h.app)).toEqual({});
    // A token the cluster does not know is no one.
    expect((await post(`${base}/apps/${h.app}/approve`, `revision=${rev}`, { Authorization: "Bearer not-a-token" })).status).toBe(401);
    expect(await control.load(h.app)).toEqual({});

    const ok = await post(`${base}/apps/${h.app}/approve`, `revision=${rev.slice(0, 12)}`, { Authorization: `Bearer ${captain.token}` });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, by: captain.username });
    expect(await control.load(h.app)).toEqual({ approvedRevision: rev, approvedBy: captain.username });

    expect((await h.cycle()).kind).toBe("applied");
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state?.phase).toBe("Ready");
    expect(state?.history[0]).toMatchObject({ revision: rev, result: "Applied", by: captain.username });

    // `plumber history` shows who.
    const main = join(findRepoRoot(), "dist", "src", "cli", "main.js");
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [main, "--config", h.configFile, "--cache-dir", h.cacheDir, "--log-level", "warn", "history", h.app], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(out).toMatch(/BY\n/);
    expect(out).toContain(captain.username);
  });

  it("pushes an update over SSE when a deploy lands, and the page then shows it", async () => {
    const { h, d, base } = await bed({ app: { approval: "none" } });
    const stream = sse(`${base}/api/stream`);
    cleanups.push(() => stream.close());
    const first = await stream.next();
    expect((await (await get(`${base}/`)).text()).match(/data-version="(\d+)"/)?.[1]).toBe(String(first));

    await h.repo.commit({ "b.yaml": configMap("b", { v: "1" }) }, "add b");
    expect((await h.cycle()).kind).toBe("applied");
    await d.refresh();
    const second = await stream.next();
    expect(second).toBeGreaterThan(first);
    const page = await (await get(`${base}/`)).text();
    expect(page).toContain(`data-version="${second}"`);
    expect(page).toMatch(new RegExp(`data-app="${h.app}" data-cluster="local" data-phase="(Verifying|Ready)"`));
    expect(page).toContain('<span data-testid="subject">add b</span>');

    // Nothing changed: a refresh pushes nothing (the next event is the one after the next change).
    await d.refresh();
    await h.repo.commit({ "c.yaml": configMap("c", { v: "1" }) }, "add c");
    expect((await h.cycle()).kind).toBe("applied");
    await d.refresh();
    expect(await stream.next()).toBe(second + 1);
  });

  it("reads nothing while nobody looks; a page asked for after a quiet spell shows a fresh read", async () => {
    const { h, rt, base } = await bed({ app: { approval: "none" }, refreshMs: 100 });
    const client = rt.clusters.get("local")?.client;
    const before = client?.stats.snapshot().total;
    // Ten refresh periods with no page and no stream open: not one request.
    await new Promise((r) => setTimeout(r, 1000));
    expect(client?.stats.snapshot().total).toBe(before);

    await h.repo.commit({ "b.yaml": configMap("b", { v: "1" }) }, "add b");
    expect((await h.cycle()).kind).toBe("applied");
    // The snapshot is a second old: the page waits for a read, so it already shows the deploy.
    const page = await (await get(`${base}/`)).text();
    expect(page).toContain('<span data-testid="subject">add b</span>');
    expect(client?.stats.snapshot().total).toBeGreaterThan(before ?? 0);
  });

  it("off loopback, reads need a token; sign-in sets an HttpOnly SameSite=Strict session; forms need the CSRF token and this origin; bodies are bounded", async () => {
    const { h, d } = await bed({ listen: "0.0.0.0:0" });
    const base = `http://127.0.0.1:${d.port}`;
    const captain = await saToken(h.kube, h, true);
    const rev = await h.repo.head("main");

    const anon = await get(`${base}/`);
    expect(anon.status).toBe(303);
    expect(anon.headers.get("location")).toBe("/login");
    expect((await get(`${base}/api/fleet`)).status).toBe(401);
    expect((await get(`${base}/`, { Authorization: `Bearer ${captain.token}` })).status).toBe(200);

    expect((await post(`${base}/login`, "token=wrong")).status).toBe(401);
    const login = await post(`${base}/login`, `token=${encodeURIComponent(captain.token)}`, { Origin: base });
    expect(login.status).toBe(303);
    const cookie = login.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^plumber_session=[\w-]+; HttpOnly; SameSite=Strict; Path=\//);
    const session = cookie.split(";")[0] as string;

    const app = await (await get(`${base}/apps/${h.app}`, { Cookie: session })).text();
    expect(app).toContain(`data-testid="user">${captain.username}</span>`);
    expect(app).toContain('data-testid="action-approve"');
    const csrf = /name="csrf" value="([^"]+)"/.exec(app)?.[1] ?? "";
    expect(csrf).not.toBe("");

    const control = new ControlStore(h.kube, h.stateNamespace);
    expect((await post(`${base}/apps/${h.app}/approve`, `revision=${rev}`, { Cookie: session, Origin: base })).status).toBe(403);
    expect((await post(`${base}/apps/${h.app}/approve`, `revision=${rev}&csrf=${csrf}`, { Cookie: session, Origin: "http://evil.example" })).status).toBe(403);
    expect(await control.load(h.app)).toEqual({});

    const big = await post(`${base}/apps/${h.app}/approve`, `revision=${rev}&csrf=${csrf}&pad=${"x".repeat(64 * 1024)}`, { Cookie: session, Origin: base });
    expect(big.status).toBe(413);
    expect(await control.load(h.app)).toEqual({});

    const ok = await post(`${base}/apps/${h.app}/approve`, `revision=${rev}&csrf=${csrf}`, { Cookie: session, Origin: base });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe(`/apps/${h.app}`);
    expect(await control.load(h.app)).toMatchObject({ approvedRevision: rev, approvedBy: captain.username });
    expect(await (await get(`${base}/apps/${h.app}`, { Cookie: session })).text()).toContain(`data-testid="flash">approved ${h.app} at ${rev.slice(0, 12)} by ${captain.username}`);
  });

  it("`plumber run --dashboard-listen` serves it beside the daemon, `plumber dashboard` alone; both stop on SIGTERM", async () => {
    const h = await harness(FILES);
    cleanups.push(() => h.close());
    const common = ["--config", h.configFile, "--cache-dir", h.cacheDir];
    const started = async (p: PlumberProcess): Promise<string> => {
      cleanups.push(() => p.kill());
      const line = await p.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("dashboard listening on "), 30_000, "dashboard line");
      return (line.msg as string).slice("dashboard listening on ".length).replace(/\/$/, "");
    };

    const daemon = PlumberProcess.start([...common, "run", "--metrics-addr", "", "--no-leader-elect", "--dashboard-listen", "127.0.0.1:0"]);
    const url = await started(daemon);
    const fleet = await get(`${url}/`);
    expect(fleet.status).toBe(200);
    expect(await fleet.text()).toContain(`data-app="${h.app}"`);
    daemon.signal("SIGTERM");
    expect((await daemon.exited).code).toBe(0);

    const alone = PlumberProcess.start([...common, "dashboard", "--listen", "127.0.0.1:0"]);
    const url2 = await started(alone);
    expect(((await (await get(`${url2}/api/fleet`)).json()) as { rows: { app: string }[] }).rows.map((r) => r.app)).toEqual([h.app]);
    alone.signal("SIGTERM");
    expect((await alone.exited).code).toBe(0);
  });

  it("rollback pins the last good revision and resume lets go, each recorded with who asked", async () => {
    const { h, base } = await bed({ app: { approval: "none" } });
    const good = await h.repo.head("main");
    const next = await h.repo.commit({ "b.yaml": configMap("b", { v: "1" }) }, "add b");
    expect((await h.cycle()).kind).toBe("applied");
    const captain = await saToken(h.kube, h, true);
    const control = new ControlStore(h.kube, h.stateNamespace);
    const auth = { Authorization: `Bearer ${captain.token}` };

    const rb = await post(`${base}/apps/${h.app}/rollback`, "", auth);
    expect(await rb.json()).toMatchObject({ ok: true, message: expect.stringContaining(`pinned to ${good.slice(0, 12)} by ${captain.username}`) });
    expect(await control.load(h.app)).toEqual({ pinRevision: good, pinnedBy: captain.username });
    expect((await h.cycle()).kind).toBe("applied");
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state?.revision).toBe(good);
    expect(state?.history[0]).toMatchObject({ revision: good, by: captain.username });
    expect(state?.history[1]).toMatchObject({ revision: next });
    expect(state?.history[1]).not.toHaveProperty("by");

    expect((await post(`${base}/apps/${h.app}/resume`, "", auth)).status).toBe(200);
    expect(await control.load(h.app)).toEqual({});
    expect((await post(`${base}/apps/${h.app}/bogus`, "", auth)).status).toBe(404);
  });

  it("release now fires a run recorded as manual by the user; without the grant on the release's record, 403 and no run", async () => {
    const release = uniqueName("rel");
    const job = { apiVersion: "batch/v1", kind: "Job", spec: { backoffLimit: 0, template: { spec: { restartPolicy: "Never", containers: [{ name: "x", image: "alpine:3.20" }] } } } };
    const { h } = await bed();
    // The release names the harness's own namespace, which exists only once the harness made it: written now, then re-read.
    const { readFile, writeFile } = await import("node:fs/promises");
    const { parse, stringify } = await import("yaml");
    const cfg = parse(await readFile(h.configFile, "utf8")) as Record<string, unknown>;
    cfg.releases = [{ name: release, schedule: "0 2 * * *", timezone: "Europe/Berlin", repo: "plumbing", branch: "main", cluster: "local", namespace: h.namespace, template: { inline: job } }];
    await writeFile(h.configFile, stringify(cfg));
    const rt = await buildRuntime(await loadConfig(h.configFile), { log: silentLogger(), cacheDir: join(h.dir, "rel-cache") });
    cleanups.push(() => rt.close());
    const d = await startDashboard({ rt, listen: "127.0.0.1:0", publicReads: false, refreshMs: 3600_000, log: silentLogger() });
    cleanups.push(() => d.close());
    const url = `http://127.0.0.1:${d.port}`;
    const rev = await h.repo.head("main");

    const page = await (await get(`${url}/releases`)).text();
    expect(page).toContain(`data-testid="release" data-release="${release}"`);
    expect(page).toContain(`<code>${rev.slice(0, 12)}</code> (head of plumbing/main)`);
    expect(page.match(/data-testid="next-fire"/g)).toHaveLength(3);

    const jobs = async (): Promise<string[]> => ((await h.kube.request<{ items: { metadata: { name: string } }[] }>({ method: "GET", path: `/apis/batch/v1/namespaces/${h.namespace}/jobs` })).body.items ?? []).map((j) => j.metadata.name);
    const stranger = await saToken(h.kube, h, true);
    expect((await post(`${url}/releases/${release}/run`, "", { Authorization: `Bearer ${stranger.token}` })).status).toBe(403);
    expect(await jobs()).toEqual([]);

    const captain = await saToken(h.kube, h, true, [`plumber-release-${release}`]);
    const ok = await post(`${url}/releases/${release}/run`, "", { Authorization: `Bearer ${captain.token}` });
    expect(await ok.json()).toMatchObject({ ok: true, by: captain.username });
    expect(await jobs()).toHaveLength(1);
    await d.refresh();
    expect(await (await get(`${url}/releases`)).text()).toContain(`manual by ${captain.username}`);
  });
});
