// Metric names and values, and the probes/metrics HTTP server.
import { afterEach, describe, expect, it } from "vitest";
import { RequestStats } from "../../src/kube/client.js";
import { parseListenAddr, startServiceHttp, type ServiceHttp } from "../../src/service/http.js";
import { PlumberMetrics } from "../../src/service/metrics.js";

describe("metrics", () => {
  it("exposes only series that were updated, with Prometheus names", async () => {
    const m = new PlumberMetrics({ processMetrics: false });
    const empty = await m.text();
    // Only the leader gauge (no labels: always one series; the daemon sets it at start).
    expect(empty.match(/^plumber_\w+(\{[^}]*\})? .*$/gm)).toEqual(["plumber_leader 0"]);
    m.observeReconcile("tasks", "applied", 0.2);
    m.observeReconcile("tasks", "repaired", 0.1);
    m.observeEntry("tasks", "created");
    m.observeEntry("tasks", "unchanged");
    m.observeEntry("tasks", "pruned");
    m.setLeader(true);
    const text = await m.text();
    expect(text).toMatch(/^plumber_reconcile_total\{app="tasks",result="applied"\} 1$/m);
    expect(text).toMatch(/^plumber_reconcile_duration_seconds_bucket\{le="0.25",app="tasks",result="applied"\} 1$/m);
    expect(text).toMatch(/^plumber_drift_repairs_total\{app="tasks"\} 1$/m);
    expect(text).toMatch(/^plumber_objects_applied_total\{app="tasks",action="created"\} 1$/m);
    expect(text).not.toMatch(/action="unchanged"/);
    expect(text).toMatch(/^plumber_objects_pruned_total\{app="tasks"\} 1$/m);
    expect(text).toMatch(/^plumber_leader 1$/m);
    for (const name of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      expect(name[1]).toMatch(/^plumber_[a-z_]+$/);
      if (name[2] === "counter") expect(name[1]).toMatch(/_total$/);
    }
  });

  it("observes events: a cycle is a reconcile by its outcome (an aborted one is not), an object by its action, a listing sets the source gauges", async () => {
    const m = new PlumberMetrics({ processMetrics: false });
    const cycle = { type: "cycle", app: "tasks", cluster: "c1" } as const;
    m.observe({ ...cycle, outcome: "applied", revision: "r", durationMs: 200, contest: { contested: 1, deferred: 2, notices: [] } });
    m.observe({ ...cycle, outcome: "failed", message: "boom", durationMs: 50 });
    m.observe({ ...cycle, outcome: "aborted", durationMs: 10 });
    m.observe({ type: "object", app: "tasks", cluster: "c1", entry: { key: "k", subject: "ConfigMap/ci/a", action: "configured" } });
    m.observe({ type: "source", repo: "plumbing", apps: ["tasks"], health: { failingSince: 1_700_000_000_000, error: "HTTP 503" }, changes: [] });
    m.observe({ type: "deploy", outcome: "deployed", app: "tasks", cluster: "c1", revision: "r", result: "applied 1" });
    const text = await m.text();
    expect(text).toMatch(/^plumber_reconcile_total\{app="tasks",result="applied"\} 1$/m);
    expect(text).toMatch(/^plumber_reconcile_total\{app="tasks",result="failed"\} 1$/m);
    expect(text).not.toMatch(/result="aborted"/);
    expect(text).toMatch(/^plumber_reconcile_duration_seconds_sum\{app="tasks",result="applied"\} 0.2$/m);
    expect(text).toMatch(/^plumber_contested_objects\{app="tasks"\} 1$/m);
    expect(text).toMatch(/^plumber_drift_repairs_deferred_total\{app="tasks"\} 2$/m);
    expect(text).toMatch(/^plumber_objects_applied_total\{app="tasks",action="configured"\} 1$/m);
    expect(text).toMatch(/^plumber_source_failing\{repo="plumbing"\} 1$/m);
  });

  it("source health and contested objects", async () => {
    const m = new PlumberMetrics({ processMetrics: false });
    m.observeSource("plumbing", { lastGoodAt: 1_700_000_000_000 });
    let text = await m.text();
    expect(text).toMatch(/^plumber_source_failing\{repo="plumbing"\} 0$/m);
    expect(text).toMatch(/^plumber_source_last_listing_timestamp_seconds\{repo="plumbing"\} 1700000000$/m);
    expect(text).not.toMatch(/^plumber_source_failing_since_timestamp_seconds\{/m);
    m.observeSource("plumbing", { failingSince: 1_700_000_060_500, lastGoodAt: 1_700_000_000_000 });
    text = await m.text();
    expect(text).toMatch(/^plumber_source_failing\{repo="plumbing"\} 1$/m);
    expect(text).toMatch(/^plumber_source_failing_since_timestamp_seconds\{repo="plumbing"\} 1700000060.5$/m);
    m.observeSource("plumbing", { lastGoodAt: 1_700_000_120_000 });
    text = await m.text();
    expect(text).not.toMatch(/^plumber_source_failing_since_timestamp_seconds\{/m);
    expect(text).toMatch(/^plumber_source_last_listing_timestamp_seconds\{repo="plumbing"\} 1700000120$/m);

    m.observeContest("tasks", 0, 0);
    m.observeContest("tasks", 1, 2);
    m.observeContest("tasks", 1, 1);
    text = await m.text();
    expect(text).toMatch(/^plumber_contested_objects\{app="tasks"\} 1$/m);
    expect(text).toMatch(/^plumber_drift_repairs_deferred_total\{app="tasks"\} 3$/m);
  });

  it("follows the runtime's own counters by their increase, across runtimes", async () => {
    const m = new PlumberMetrics({ processMetrics: false });
    const s1 = new RequestStats();
    const git1 = { total: 0, failed: 0 };
    const untrack = m.trackKube("local", s1);
    const untrackGit = m.trackRepo("plumbing", git1);
    s1.record({ method: "GET", path: "/x" });
    s1.record({ method: "GET", path: "/x", list: true });
    s1.record({ method: "PATCH", path: "/x", query: { dryRun: "All" } });
    s1.record({ method: "PATCH", path: "/x" });
    git1.total = 3;
    git1.failed = 1;
    let text = await m.text();
    expect(text).toMatch(/^plumber_kube_api_requests_total\{cluster="local",verb="patch"\} 2$/m);
    expect(text).toMatch(/^plumber_kube_api_requests_total\{cluster="local",verb="list"\} 1$/m);
    expect(text).toMatch(/^plumber_kube_api_writes_total\{cluster="local"\} 1$/m);
    expect(text).toMatch(/^plumber_kube_api_dry_runs_total\{cluster="local"\} 1$/m);
    expect(text).toMatch(/^plumber_git_requests_total\{repo="plumbing"\} 3$/m);
    expect(text).toMatch(/^plumber_git_request_failures_total\{repo="plumbing"\} 1$/m);
    s1.record({ method: "DELETE", path: "/x" });
    untrack();
    untrackGit();
    // A new runtime (reload, new leader term): counters start at zero there, not here.
    const s2 = new RequestStats();
    m.trackKube("local", s2);
    s2.record({ method: "PATCH", path: "/y" });
    text = await m.text();
    expect(text).toMatch(/^plumber_kube_api_requests_total\{cluster="local",verb="patch"\} 3$/m);
    expect(text).toMatch(/^plumber_kube_api_requests_total\{cluster="local",verb="delete"\} 1$/m);
    expect(text).toMatch(/^plumber_kube_api_writes_total\{cluster="local"\} 3$/m);
  });
});

describe("probes and metrics server", () => {
  let srv: ServiceHttp | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it("parses listen addresses", () => {
    expect(parseListenAddr(":8080")).toEqual({ host: undefined, port: 8080 });
    expect(parseListenAddr("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListenAddr("[::1]:9090")).toEqual({ host: "::1", port: 9090 });
    expect(parseListenAddr("9090")).toEqual({ host: undefined, port: 9090 });
    expect(() => parseListenAddr("localhost")).toThrow(/invalid listen address/);
    expect(() => parseListenAddr(":70000")).toThrow(/out of range/);
  });

  it("serves /healthz, /readyz (503 until ready, with the reason) and /metrics", async () => {
    let ready = false;
    const m = new PlumberMetrics({ processMetrics: false });
    m.setLeader(false);
    srv = await startServiceHttp({
      addr: "127.0.0.1:0",
      metrics: async () => ({ contentType: m.contentType, body: await m.text() }),
      ready: () => (ready ? { ok: true } : { ok: false, reason: "reading the state of every app" }),
    });
    const base = `http://127.0.0.1:${srv.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const nr = await fetch(`${base}/readyz`);
    expect(nr.status).toBe(503);
    expect(await nr.text()).toMatch(/reading the state/);
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/text\/plain/);
    expect(await metrics.text()).toMatch(/^plumber_leader 0$/m);
    expect((await fetch(`${base}/other`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
  });
});
