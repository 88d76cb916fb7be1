// The daemon in-process against the real control plane and git server: /metrics scraped after a
// reconcile, a drift repair and a prune; Kubernetes Events; config reload (an invalid config is
// refused and the old one keeps running; a valid one is taken); plumber's own config guarded.
// Each test has its own daemon, repo, namespaces and app names.
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { createLogger } from "../../src/log.js";
import type { ObservedEvent } from "../../src/observe/events.js";
import type { TestRepo } from "../bed/testrepo.js";
import { Daemon } from "../../src/service/daemon.js";
import { Metrics } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const cm = (name: string, data: Record<string, string>, annotations?: Record<string, string>) =>
  stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(annotations ? { annotations } : {}) }, data });

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("plumber run (in-process daemon)", () => {
  const env = testEnv();
  let kube: KubeClient;
  let repo: TestRepo;
  let dir: string;
  let configFile: string;
  let daemon: Daemon;
  let running: Promise<number>;
  let stop: AbortController;
  let app: string;
  let app2: string;
  let ns: string;
  let stateNs: string;
  /** What a caller's observer heard: the same events metrics and Events are made from. */
  let heard: ObservedEvent[];

  const config = (apps: string[], extra: Record<string, unknown> = {}) =>
    stringify({
      clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
      repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
      apps: apps.map((name) => ({ name, repo: "plumbing", branch: "main", path: name === app ? "a" : "b", cluster: "local", namespace: ns })),
      state: { namespace: stateNs },
      ...extra,
    });

  const base = () => `http://${daemon.address}`;
  const scrape = async () => new Metrics(await (await fetch(`${base()}/metrics`)).text());
  const state = (name: string) => kube.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(name)}`);
  const applied = (name: string, rev: string) => until(`${name} at ${rev.slice(0, 8)}`, async () => (await state(name))?.data?.revision === rev && (await state(name)));

  beforeAll(async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
  });

  beforeEach(async () => {
    stop = new AbortController();
    app = uniqueName("svc").slice(0, 30).replace(/-+$/, "");
    app2 = `${app}-b`;
    ns = uniqueName("svc-ns");
    stateNs = uniqueName("svc-state");
    heard = [];
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) });
    repo = await newTestRepo("svc");
    await repo.commit({ "a/one.yaml": cm("one", { v: "1" }), "a/two.yaml": cm("two", { v: "1" }), "b/three.yaml": cm("three", { v: "1" }) }, "initial");
    dir = await mkdtemp(join(await tempDir("svc"), "cfg-"));
    configFile = join(dir, "plumber.yaml");
    await writeFile(join(dir, "token"), env.gitToken);
    await writeFile(configFile, config([app]));
    daemon = new Daemon({
      configPath: configFile,
      config: await loadConfig(configFile),
      log: createLogger({ level: process.env.SVC_LOG ?? "silent", pretty: false }),
      cacheDir: join(dir, "cache"),
      metricsAddr: "127.0.0.1:0",
      leaderElection: { enabled: false },
      reloadPollMs: 200,
      stop: stop.signal,
      runtimeOptions: { observer: { observe: (e) => heard.push(e) } },
    });
    running = daemon.run();
    await until("metrics server", async () => daemon.address);
  });

  afterEach(async () => {
    stop.abort();
    expect(await running).toBe(0);
  });

  afterAll(() => kube?.close());

  it("is ready once the state is read, and /metrics has the series of a reconcile", async () => {
    await until("ready", async () => (await fetch(`${base()}/readyz`)).status === 200);
    expect((await fetch(`${base()}/healthz`)).status).toBe(200);
    const head = await repo.head("main");
    await applied(app, head);
    const m = await until("reconcile series", async () => {
      const x = await scrape();
      return (x.value("plumber_reconcile_total", { app, result: "applied" }) ?? 0) >= 1 && x;
    });
    expect(m.value("plumber_reconcile_total", { app, result: "applied" })).toBe(1);
    expect(m.value("plumber_reconcile_duration_seconds_count", { app, result: "applied" })).toBe(1);
    expect(m.value("plumber_reconcile_duration_seconds_sum", { app, result: "applied" })).toBeGreaterThan(0);
    expect(m.value("plumber_objects_applied_total", { app, action: "created" })).toBe(2);
    expect(m.value("plumber_git_requests_total", { repo: "plumbing" })).toBeGreaterThanOrEqual(2);
    expect(m.value("plumber_git_request_failures_total", { repo: "plumbing" })).toBe(0);
    for (const verb of ["get", "list", "patch"]) expect(m.value("plumber_kube_api_requests_total", { cluster: "local", verb })).toBeGreaterThan(0);
    // two objects and the state record written; the dry-runs are counted apart
    expect(m.value("plumber_kube_api_writes_total", { cluster: "local" })).toBeGreaterThanOrEqual(3);
    expect(m.value("plumber_kube_api_dry_runs_total", { cluster: "local" })).toBeGreaterThanOrEqual(2);
    expect(m.value("plumber_leader")).toBe(1);
    expect(m.value("process_resident_memory_bytes")).toBeGreaterThan(0);
    // steady state keeps counting unchanged cycles
    await until("unchanged cycles", async () => ((await scrape()).value("plumber_reconcile_total", { app, result: "unchanged" }) ?? 0) >= 2);

    // The first deploy as the observer heard it: each object, the deploy, then the one cycle event.
    const first = heard.filter((e) => "app" in e && e.app === app).slice(0, 4);
    expect(first.map((e) => (e.type === "object" ? `object ${e.entry.action}` : e.type === "deploy" ? `deploy ${e.outcome}` : `${e.type} ${"outcome" in e ? e.outcome : ""}`))).toEqual([
      "object created",
      "object created",
      "deploy deployed",
      "cycle applied",
    ]);
    expect(first[3]).toMatchObject({ type: "cycle", cluster: "local", revision: head, changes: "2 created" });
    // Every counted reconcile was a cycle event (the metric is made from them; more may have come since the scrape).
    const counted = await scrape();
    const cycles = heard.filter((e) => e.type === "cycle" && e.app === app && e.outcome !== "aborted").length;
    expect(cycles).toBeGreaterThanOrEqual((counted.value("plumber_reconcile_total", { app, result: "applied" }) ?? 0) + (counted.value("plumber_reconcile_total", { app, result: "unchanged" }) ?? 0));
    expect(heard.some((e) => e.type === "source" && e.repo === "plumbing" && e.health.lastGoodAt !== undefined)).toBe(true);
  });

  it("counts a drift repair and a prune, and records Events on the state ConfigMap", async () => {
    await applied(app, await repo.head("main"));
    await kube.request({
      method: "PATCH",
      path: `/api/v1/namespaces/${ns}/configmaps/one`,
      query: { fieldManager: "someone-else", force: "true" },
      contentType: "application/apply-patch+yaml",
      body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "one" }, data: { v: "changed" } }),
    });
    await until("drift repaired", async () => ((await scrape()).value("plumber_drift_repairs_total", { app }) ?? 0) >= 1);
    expect((await kube.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/one`))?.data.v).toBe("1");
    expect((await scrape()).value("plumber_reconcile_total", { app, result: "repaired" })).toBe(1);

    const rev = await repo.commit({ "a/two.yaml": null }, "drop two");
    await applied(app, rev);
    await until("prune counted", async () => (await scrape()).value("plumber_objects_pruned_total", { app }) === 1);

    const events = await until("events", async () => {
      const list = await kube.request<{ items: Array<{ reason: string; type: string; note: string; regarding: { kind: string; name: string; uid?: string }; reportingController: string }> }>({
        method: "GET",
        path: `/apis/events.k8s.io/v1/namespaces/${stateNs}/events`,
      });
      const mine = list.body.items.filter((e) => e.regarding.name === stateObjectName(app));
      return mine.some((e) => e.reason === "DriftRepaired") && mine.filter((e) => e.reason === "Deployed").length >= 2 && mine;
    });
    const deployed = events.find((e) => e.reason === "Deployed");
    expect(deployed).toMatchObject({ type: "Normal", reportingController: "plumber.dev/plumber", regarding: { kind: "ConfigMap" } });
    expect(deployed?.regarding.uid).toBeTruthy();
    expect(events.find((e) => e.reason === "DriftRepaired")?.note).toMatch(/drift repaired at revision [0-9a-f]{12}: 1 configured/);
    const m = await scrape();
    expect(m.value("plumber_events_total", { reason: "Deployed", outcome: "emitted" })).toBeGreaterThanOrEqual(2);
  });

  it("refuses an invalid config on reload and keeps running the old one; takes a valid one", async () => {
    await applied(app, await repo.head("main"));
    await writeFile(configFile, config([app]).replace("interval: 1s", "interval: whenever"));
    await until("reload refused", async () => (await scrape()).value("plumber_config_reloads_total", { result: "refused" }) === 1);
    // SIGHUP path: the same file is refused again, explicitly.
    expect(await daemon.reload()).toBe("refused");
    // Still reconciling with the old config.
    const rev = await repo.commit({ "a/one.yaml": cm("one", { v: "2" }) }, "bump one");
    await applied(app, rev);
    expect((await fetch(`${base()}/readyz`)).status).toBe(200);

    // A valid config with a second app: validated, then taken.
    await writeFile(configFile, config([app, app2]));
    await until("reload applied", async () => (await scrape()).value("plumber_config_reloads_total", { result: "applied" }) === 1);
    await applied(app2, rev);
    expect(await kube.getOptional(`/api/v1/namespaces/${ns}/configmaps/three`)).toBeTruthy();
    // The first app was not re-applied by the new runtime (initial and "bump one" only): state read back from the cluster.
    expect((await scrape()).value("plumber_reconcile_total", { app, result: "applied" })).toBe(2);
  });

  it("does not apply its own config when the new one is invalid (plumber.dev/config)", async () => {
    const annotations = { "plumber.dev/config": "true" };
    const good = config([app, app2]);
    const rev1 = await repo.commit({ "a/plumber-config.yaml": cm("plumber-config", { "plumber.yaml": good }, annotations) }, "config as code");
    await applied(app, rev1);
    const bad = good.replace("branch: main", "branch: main\n    colour: blue");
    const rev2 = await repo.commit({ "a/plumber-config.yaml": cm("plumber-config", { "plumber.yaml": bad }, annotations) }, "bad config");
    const st = await until("refused", async () => {
      const s = await state(app);
      return s?.data?.attemptedRevision === rev2 && s.data.lastResult === "Failed" && s;
    });
    expect(st.data?.revision).toBe(rev1);
    expect(st.data?.message).toMatch(/a\/plumber-config\.yaml:\d+: ConfigMap plumber-config .*plumber\.yaml is not a valid plumber config; refusing to apply it to plumber itself/);
    expect(st.data?.message).toMatch(/colour/);
    const live = await kube.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/plumber-config`);
    expect(live?.data["plumber.yaml"]).toBe(good);
    await until("failure event", async () => {
      const list = await kube.request<{ items: Array<{ reason: string; regarding: { name: string }; note: string }> }>({ method: "GET", path: `/apis/events.k8s.io/v1/namespaces/${stateNs}/events` });
      return list.body.items.some((e) => e.regarding.name === stateObjectName(app) && e.reason === "ReconcileFailed" && /not a valid plumber config/.test(e.note));
    });
  });
});
