// Promotion between apps on two real clusters: nightly on the run's shared control plane, prod on
// a second one started for this file. Time is the test's clock (soak is never waited for); the
// tests play Tekton's part by writing a check PipelineRun's status.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { checkObjectName } from "../../src/checks/run.js";
import { loadConfig } from "../../src/config/load.js";
import { kubeSystemUID } from "../../src/kube/identity.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import type { AppReconciler, CycleResult } from "../../src/reconcile/app.js";
import { RepoPoller } from "../../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../../src/reconcile/runtime.js";
import { statusCommand } from "../../src/cli/commands.js";
import { approveCommand } from "../../src/cli/control.js";
import type { CommandContext } from "../../src/cli/context.js";
import { StateStore, stateObjectName, type AppState } from "../../src/state/store.js";
import { sleep } from "../../src/util/pool.js";
import { startCluster, type ExtraCluster } from "../bed/clusters.js";
import type { TestRepo } from "../bed/testrepo.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";
import { configMap, smokeCheck } from "./support.js";

const env = testEnv();
let prod: ExtraCluster;
let nightlyKube: KubeClient;

beforeAll(async () => {
  [prod, nightlyKube] = await Promise.all([startCluster({ crds: true }), KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }))]);
}, 120_000);
afterAll(async () => {
  nightlyKube?.close();
  await prod?.stop();
});

const H = 3_600_000;


/** The two overlays of one revision: the same ConfigMap, one value per cluster. */
function overlays(v: string): Record<string, string> {
  return {
    "overlays/nightly/app.yaml": configMap("app", { v, env: "nightly" }),
    "overlays/prod/app.yaml": configMap("app", { v, env: "prod" }),
  };
}

interface BedOptions {
  nightly?: Record<string, unknown>;
  prod?: Record<string, unknown>;
  clusters?: { nightly?: Record<string, unknown>; prod?: Record<string, unknown> };
  /** More apps, as written in the config file (namespace and cluster names of the bed). */
  apps?: (b: { nightlyNs: string; prodNs: string }) => Record<string, unknown>[];
  /** More repos and releases, as written in the config file. */
  more?: (b: { nightlyNs: string; prodNs: string }) => { repos?: Record<string, unknown>[]; releases?: Record<string, unknown>[] };
}

interface Bed {
  repo: TestRepo;
  nightlyNs: string;
  prodNs: string;
  stateNs: string;
  dir: string;
  rt: Runtime;
  /** The test's clock, moved by hand. */
  advance(ms: number): void;
  /** One poll of the repo: every app's result by name. */
  cycle(): Promise<Map<string, CycleResult>>;
  app(name: string): AppReconciler;
  /** The stored state of an app in a cluster (undefined: none). */
  state(cluster: "nightly" | "prod", app: string): Promise<AppState | undefined>;
  /** The "app" ConfigMap's data in a cluster's namespace. */
  live(cluster: "nightly" | "prod"): Promise<Record<string, string> | undefined>;
  /** A runtime from the same config (fresh cache and all, with `only`: as `plumber run --only`). */
  runtime(opts?: { only?: string[]; cacheDir?: string }): Promise<Runtime>;
  reconfigure(o: BedOptions): Promise<void>;
  /** What the CLI's commands get (plumber status, approve), on the test's clock. */
  context(): CommandContext;
}

const opened: (() => void)[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c();
});

async function bed(files: Record<string, string>, o: BedOptions = {}): Promise<Bed> {
  const repo = await newTestRepo("promote");
  await repo.commit(files, "v1");
  const nightlyNs = uniqueName("nightly");
  const prodNs = uniqueName("prod");
  const stateNs = uniqueName("state");
  for (const [kube, ns] of [
    [nightlyKube, nightlyNs],
    [prod.kube, prodNs],
  ] as const) {
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) });
  }
  const dir = await tempDir("promote");
  const configFile = join(dir, "plumber.yaml");
  await writeFile(join(dir, "token"), env.gitToken);
  let now = Date.parse("2026-12-01T12:00:00.000Z");
  const clock = { now: () => new Date(now) };

  const writeConfig = async (c: BedOptions): Promise<void> => {
    const config = {
      clusters: [
        { name: "nightly", kubeconfig: env.kubeconfigPath, ...(c.clusters?.nightly ?? {}) },
        { name: "prod", kubeconfig: prod.kubeconfigPath, ...(c.clusters?.prod ?? {}) },
      ],
      repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }, ...(c.more?.({ nightlyNs, prodNs }).repos ?? [])],
      apps: [
        { name: "nightly", repo: "plumbing", branch: "main", path: "overlays/nightly", cluster: "nightly", namespace: nightlyNs, ...(c.nightly ?? {}) },
        { name: "prod", promote: { from: "nightly", soak: "24h" }, path: "overlays/prod", cluster: "prod", namespace: prodNs, ...(c.prod ?? {}) },
        ...(c.apps?.({ nightlyNs, prodNs }) ?? []),
      ],
      state: { namespace: stateNs },
      releases: c.more?.({ nightlyNs, prodNs }).releases ?? [],
    };
    await writeFile(configFile, stringify(config));
  };
  const runtime = async (r: { only?: string[]; cacheDir?: string } = {}): Promise<Runtime> => {
    const rt = await buildRuntime(await loadConfig(configFile), { log: silentLogger(), cacheDir: r.cacheDir ?? join(dir, "cache"), clock, ...(r.only ? { only: r.only } : {}) });
    opened.push(() => rt.close());
    return rt;
  };
  await writeConfig(o);
  let rt = await runtime();
  const stores = { nightly: new StateStore(nightlyKube, stateNs), prod: new StateStore(prod.kube, stateNs) };
  const b: Bed = {
    repo,
    nightlyNs,
    prodNs,
    stateNs,
    dir,
    get rt() {
      return rt;
    },
    advance(ms) {
      now += ms;
    },
    async cycle() {
      const conn = rt.repos.get("plumbing");
      if (!conn) throw new Error("no repo connection");
      const res = await new RepoPoller(conn, rt.apps, silentLogger()).cycle();
      if (res.error) throw new Error(`poll failed: ${res.error}`);
      return new Map(res.apps.map((a) => [a.app, a.result]));
    },
    app(name) {
      const a = rt.apps.find((x) => x.app.name === name);
      if (!a) throw new Error(`no app ${name}`);
      return a;
    },
    state: (cluster, app) => stores[cluster].load(app),
    async live(cluster) {
      const [kube, ns] = cluster === "nightly" ? [nightlyKube, nightlyNs] : [prod.kube, prodNs];
      return (await kube.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/app`))?.data;
    },
    runtime,
    context() {
      return { config: rt.config, log: silentLogger(), runtime: (only) => runtime(only?.length ? { only } : {}) };
    },
    async reconfigure(c) {
      rt.close();
      await writeConfig(c);
      rt = await runtime();
    },
  };
  return b;
}

const prPath = (ns: string, name: string) => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`;

/** Plays Tekton: waits for the check PipelineRun plumber creates, then writes its verdict. */
async function finish(kube: KubeClient, path: string, succeeded: boolean): Promise<void> {
  let obj: unknown;
  for (let i = 0; i < 300 && !(obj = await kube.getOptional(path)); i++) await sleep(50);
  if (!obj) throw new Error(`${path} never appeared`);
  const reason = succeeded ? "Succeeded" : "SmokeFailed";
  await kube.request({
    method: "PATCH",
    path: `${path}/status`,
    contentType: "application/merge-patch+json",
    body: JSON.stringify({ status: { conditions: [{ type: "Succeeded", status: succeeded ? "True" : "False", reason, message: `${reason} (test)` }] } }),
  });
}

/** What an app's record in a cluster holds (the state ConfigMap): none at all when nothing was written. */
async function record(kube: KubeClient, stateNs: string, app: string): Promise<unknown> {
  return kube.getOptional(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
}

describe("promotion between two clusters", () => {
  it("promotes nightly's revision after its soak, each cluster with its own overlay; one GET of the source per cycle", async () => {
    const b = await bed(overlays("1"));
    const r1 = await b.repo.head("main");
    let res = await b.cycle();
    expect(res.get("nightly")?.kind).toBe("applied");
    // Good on nightly for 0s of 24h: prod has nothing to promote, says so, and writes nothing.
    expect(res.get("prod")).toMatchObject({ kind: "held", revision: "" });
    const held = res.get("prod");
    if (held?.kind === "held") expect(held.message).toBe(`promotion from nightly: nothing to promote yet: no revision in nightly's last 1 deploys has run good there for 24h; skipped newer: ${r1.slice(0, 12)} (soaked 0s of 24h on nightly (until 2026-12-02T12:00:00.000Z))`);
    expect(await record(prod.kube, b.stateNs, "prod")).toBeUndefined();
    expect(await b.live("prod")).toBeUndefined();

    b.advance(25 * H);
    res = await b.cycle();
    expect(res.get("prod")?.kind).toBe("applied");
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });
    expect(await b.live("nightly")).toEqual({ v: "1", env: "nightly" });
    expect(await b.state("prod", "prod")).toMatchObject({ phase: "Ready", revision: r1, branch: "main" });

    // A newer revision on nightly soaks there first; prod stays where it is, writing nothing.
    const r2 = await b.repo.commit(overlays("2"), "v2");
    const prodStats = b.rt.clusters.get("prod")?.client.stats;
    const writesBefore = prodStats?.writes ?? 0;
    res = await b.cycle();
    expect(res.get("nightly")?.kind).toBe("applied");
    expect(res.get("prod")?.kind).toBe("unchanged");
    expect((prodStats?.writes ?? 0) - writesBefore).toBe(0);
    expect(b.app("prod").lastPromotion?.note).toContain(`promoted from nightly: ${r1.slice(0, 12)} good there since 2026-12-01T12:00:00.000Z, soaked 24h at 2026-12-02T12:00:00.000Z; skipped newer: ${r2.slice(0, 12)} (soaked 0s of 24h on nightly`);
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });

    // The source costs one GET of its record per promoted app and cycle, in the source's cluster.
    const nightlyStats = b.rt.clusters.get("nightly")?.client.stats;
    const before = { total: nightlyStats?.total ?? 0, writes: nightlyStats?.writes ?? 0 };
    await b.app("prod").promotionTarget();
    expect({ total: (nightlyStats?.total ?? 0) - before.total, writes: (nightlyStats?.writes ?? 0) - before.writes }).toEqual({ total: 1, writes: 0 });

    b.advance(25 * H);
    res = await b.cycle();
    expect(res.get("prod")?.kind).toBe("applied");
    expect(await b.live("prod")).toEqual({ v: "2", env: "prod" });
    expect((await b.state("prod", "prod"))?.history.map((h) => `${h.result}:${h.revision}`)).toEqual([`Applied:${r2}`, `Applied:${r1}`]);
  });

  it("a revision whose post-check fails on nightly is rolled back there and never reaches prod", async () => {
    const b = await bed(overlays("1"), { nightly: { checks: { post: [smokeCheck] } }, prod: { promote: { from: "nightly", soak: "1h" } } });
    const r1 = await b.repo.head("main");
    let cycle = b.cycle();
    await finish(nightlyKube, prPath(b.nightlyNs, checkObjectName("nightly", "post", "smoke", r1)), true);
    expect((await cycle).get("nightly")?.kind).toBe("applied");
    b.advance(2 * H);
    expect((await b.cycle()).get("prod")?.kind).toBe("applied");

    const bad = await b.repo.commit(overlays("2-bad"), "v2 breaks smoke");
    cycle = b.cycle();
    await finish(nightlyKube, prPath(b.nightlyNs, checkObjectName("nightly", "post", "smoke", bad)), false);
    const res = await cycle;
    expect(res.get("nightly")).toMatchObject({ kind: "rolledBack", revision: r1, failedRevision: bad });
    expect(res.get("prod")?.kind).toBe("unchanged");

    // However long it is left: prod stays at r1 and says why the newer one was passed over.
    b.advance(100 * H);
    const prodStats = b.rt.clusters.get("prod")?.client.stats;
    const writesBefore = prodStats?.writes ?? 0;
    expect((await b.cycle()).get("prod")?.kind).toBe("unchanged");
    expect((prodStats?.writes ?? 0) - writesBefore).toBe(0);
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });
    expect(b.app("prod").lastPromotion?.note).toContain(`skipped newer: ${bad.slice(0, 12)} (failed post-check smoke on nightly)`);

    // The next good revision goes through once it has soaked.
    const r3 = await b.repo.commit(overlays("3"), "v3 fixes it");
    cycle = b.cycle();
    await finish(nightlyKube, prPath(b.nightlyNs, checkObjectName("nightly", "post", "smoke", r3)), true);
    await cycle;
    b.advance(2 * H);
    expect((await b.cycle()).get("prod")?.kind).toBe("applied");
    expect(await b.live("prod")).toEqual({ v: "3", env: "prod" });
  });

  it("approval on prod: the soaked revision waits for plumber approve, status saying which and since when", async () => {
    const b = await bed(overlays("1"), { prod: { promote: { from: "nightly", soak: "1h" }, approval: "manual" } });
    const r1 = await b.repo.head("main");
    await b.cycle();
    b.advance(2 * H);
    const res = await b.cycle();
    expect(res.get("prod")?.kind).toBe("held");
    const st = await b.state("prod", "prod");
    expect(st).toMatchObject({ phase: "WaitingApproval", pendingRevision: r1 });
    expect(st?.message).toContain(`revision ${r1.slice(0, 12)} waits for approval: plumber approve prod ${r1.slice(0, 12)}; promoted from nightly: ${r1.slice(0, 12)} good there since 2026-12-01T12:00:00.000Z, soaked 1h at 2026-12-01T13:00:00.000Z`);
    expect(await b.live("prod")).toBeUndefined();

    // Waiting costs no write per cycle.
    const prodStats = b.rt.clusters.get("prod")?.client.stats;
    const writesBefore = prodStats?.writes ?? 0;
    expect((await b.cycle()).get("prod")?.kind).toBe("held");
    expect((prodStats?.writes ?? 0) - writesBefore).toBe(0);

    // plumber status: which revision waits, since when it soaked on nightly, what was skipped.
    const lines: string[] = [];
    expect(await statusCommand(b.context(), (l) => lines.push(l), ["prod"], true)).toBe(0);
    const [row] = JSON.parse(lines.join("\n")) as Record<string, string>[];
    expect(row).toMatchObject({ app: "prod", branch: "main via nightly", phase: "WaitingApproval", pending: r1.slice(0, 12), promotion: `promoted from nightly: ${r1.slice(0, 12)} good there since 2026-12-01T12:00:00.000Z, soaked 1h at 2026-12-01T13:00:00.000Z` });

    // plumber approve prod <short sha>, as a person would type it.
    expect(await approveCommand(b.context(), () => {}, "prod", r1.slice(0, 12))).toBe(0);
    expect((await b.cycle()).get("prod")?.kind).toBe("applied");
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });
    // Who approved, as prod's cluster names the CLI's user (its SelfSubjectReview), not $USER.
    expect((await b.state("prod", "prod"))?.history[0]).toMatchObject({ revision: r1, by: "plumber-admin" });
  });

  it("prod's own post-check failing rolls prod back to its previous revision; nightly keeps the new one", async () => {
    const b = await bed(overlays("1"), { prod: { promote: { from: "nightly", soak: "1h" }, checks: { post: [smokeCheck] } } });
    const r1 = await b.repo.head("main");
    await b.cycle();
    b.advance(2 * H);
    let cycle = b.cycle();
    await finish(prod.kube, prPath(b.prodNs, checkObjectName("prod", "post", "smoke", r1)), true);
    expect((await cycle).get("prod")?.kind).toBe("applied");

    const r2 = await b.repo.commit(overlays("2"), "v2");
    await b.cycle();
    b.advance(2 * H);
    cycle = b.cycle();
    await finish(prod.kube, prPath(b.prodNs, checkObjectName("prod", "post", "smoke", r2)), false);
    expect((await cycle).get("prod")).toMatchObject({ kind: "rolledBack", revision: r1, failedRevision: r2 });
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });
    expect(await b.live("nightly")).toEqual({ v: "2", env: "nightly" });
  });

  it("the wrong-cluster guard on each cluster: identities swapped, both refused, nothing written on either", async () => {
    const [nightlyUID, prodUID] = await Promise.all([kubeSystemUID(nightlyKube), kubeSystemUID(prod.kube)]);
    expect(nightlyUID).not.toBe(prodUID);
    const b = await bed(overlays("1"), { clusters: { nightly: { expect: { kubeSystemUID: prodUID } }, prod: { expect: { kubeSystemUID: nightlyUID } } }, prod: { promote: { from: "nightly", soak: "0s" } } });
    const res = await b.cycle();
    for (const app of ["nightly", "prod"]) {
      expect(res.get(app)?.kind).toBe("failed");
      const r = res.get(app);
      if (r?.kind === "failed") expect(r.message).toMatch(/kube-system/);
    }
    expect(await record(nightlyKube, b.stateNs, "nightly")).toBeUndefined();
    expect(await record(prod.kube, b.stateNs, "prod")).toBeUndefined();
    expect(await b.live("nightly")).toBeUndefined();
    expect(await b.live("prod")).toBeUndefined();

    // Only nightly's identity wrong: prod's is right, but it reads nothing from a cluster that is
    // not the one its source names, so it refuses too.
    await b.reconfigure({ clusters: { nightly: { expect: { kubeSystemUID: prodUID } }, prod: { expect: { kubeSystemUID: prodUID } } }, prod: { promote: { from: "nightly", soak: "0s" } } });
    const sourceWrong = await b.cycle();
    expect(sourceWrong.get("nightly")?.kind).toBe("failed");
    expect(sourceWrong.get("prod")).toMatchObject({ kind: "failed", message: expect.stringContaining(`wrong cluster: "nightly"`) });
    expect(await record(prod.kube, b.stateNs, "prod")).toBeUndefined();

    // Only prod's identity wrong: nightly deploys, prod still refuses.
    await b.reconfigure({ clusters: { nightly: { expect: { kubeSystemUID: nightlyUID } }, prod: { expect: { kubeSystemUID: nightlyUID } } }, prod: { promote: { from: "nightly", soak: "0s" } } });
    const again = await b.cycle();
    expect(again.get("nightly")?.kind).toBe("applied");
    expect(again.get("prod")?.kind).toBe("failed");
    expect(await record(prod.kube, b.stateNs, "prod")).toBeUndefined();
    expect(await b.live("prod")).toBeUndefined();

    // With the right identities, prod follows.
    await b.reconfigure({ clusters: { nightly: { expect: { kubeSystemUID: nightlyUID } }, prod: { expect: { kubeSystemUID: prodUID } } }, prod: { promote: { from: "nightly", soak: "0s" } } });
    expect((await b.cycle()).get("prod")?.kind).toBe("applied");
  });

  it("a branchPattern app (release-*) on prod, and a promoted revision the branch has moved past, fetched by a prod-only plumber with an empty cache", async () => {
    const b = await bed(overlays("1"), {
      prod: { promote: { from: "nightly", soak: "1h" } },
      apps: ({ prodNs }) => [{ name: "prod-release", repo: "plumbing", branchPattern: "release-*", path: "release", cluster: "prod", namespace: prodNs }],
    });
    await b.repo.commit({ "release/rel.yaml": configMap("rel", { line: "1.9" }) }, "release 1.9", { branch: "release-1.9" });
    const rel110 = await b.repo.commit({ "release/rel.yaml": configMap("rel", { line: "1.10" }) }, "release 1.10", { branch: "release-1.10" });
    const r1 = await b.repo.head("main");
    const res = await b.cycle();
    expect(res.get("prod-release")?.kind).toBe("applied");
    expect((await prod.kube.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${b.prodNs}/configmaps/rel`))?.data).toEqual({ line: "1.10" });
    expect(await b.state("prod", "prod-release")).toMatchObject({ revision: rel110, branch: "release-1.10" });

    // main moves on; nightly has not deployed it yet. A plumber running prod only, with a fresh
    // cache, must fetch r1, which is no longer the head of main.
    await b.repo.commit(overlays("2"), "v2");
    b.advance(2 * H);
    const rt = await b.runtime({ only: ["prod"], cacheDir: join(b.dir, "cache-prod-only") });
    const conn = rt.repos.get("plumbing");
    if (!conn) throw new Error("no repo connection");
    const poll = await new RepoPoller(conn, rt.apps, silentLogger()).cycle();
    expect(poll.apps.map((a) => [a.app, a.result.kind])).toEqual([["prod", "applied"]]);
    expect(await b.state("prod", "prod")).toMatchObject({ revision: r1 });
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });
  });

  it("a release on the prod cluster fires the revision promoted there, its template from another repo (TEP-0098)", async () => {
    const configRepo = await newTestRepo("release-config");
    const template = {
      apiVersion: "tekton.dev/v1",
      kind: "PipelineRun",
      metadata: { generateName: "pipeline-release-" },
      spec: { pipelineRef: { name: "release" }, params: [{ name: "gitRevision", value: "$(plumber.revision)" }, { name: "versionTag", value: "$(plumber.params.versionTag)" }, { name: "from", value: "config-repo" }] },
    };
    const templateRev = await configRepo.commit({ "release/pipeline-run.yaml": stringify(template) }, "release pipeline");
    const b = await bed(overlays("1"), {
      prod: { promote: { from: "nightly", soak: "1h" } },
      more: ({ prodNs }) => ({
        repos: [{ name: "config", url: env.gitUrl(configRepo.name), interval: "1m", auth: { tokenFile: "token" } }],
        releases: [
          {
            name: "prod-release",
            schedule: "0 2 * * *",
            repo: "config",
            branch: "main",
            cluster: "prod",
            namespace: prodNs,
            template: { path: "release/pipeline-run.yaml" },
            params: { versionTag: "$(plumber.versionTag)" },
            revision: { deployedTo: "prod", olderThan: "0s" },
          },
        ],
      }),
    });
    const r1 = await b.repo.head("main");
    await b.cycle();
    b.advance(2 * H);
    expect((await b.cycle()).get("prod")?.kind).toBe("applied");
    // main moves on (nightly gets it, prod has not soaked it): the release still takes prod's r1.
    await b.repo.commit(overlays("2"), "v2");
    await b.cycle();

    const [scheduler] = b.rt.releases;
    if (!scheduler) throw new Error("no release scheduler");
    await scheduler.tick(new Date("2026-12-01T15:00:00.000Z"));
    await scheduler.tick(new Date("2026-12-02T02:00:05.000Z"));
    const runs = await prod.kube.request<{ items: { metadata: { name: string; annotations: Record<string, string> }; spec: { params: { name: string; value: string }[] } }[] }>({
      method: "GET",
      path: `/apis/tekton.dev/v1/namespaces/${b.prodNs}/pipelineruns`,
      list: true,
    });
    expect(runs.body.items.map((r) => r.metadata.name)).toEqual(["prod-release-202612020200"]);
    const run = runs.body.items[0];
    expect(run?.metadata.annotations["plumber.dev/revision"]).toBe(r1);
    expect(run?.spec.params).toEqual([
      { name: "gitRevision", value: r1 },
      { name: "versionTag", value: `v20261202-${r1.slice(0, 10)}` },
      { name: "from", value: "config-repo" },
    ]);
    expect(templateRev).not.toBe(r1);
    // Nothing of it in nightly's cluster.
    const nightlyRuns = await nightlyKube.request<{ items: unknown[] }>({ method: "GET", path: `/apis/tekton.dev/v1/namespaces/${b.nightlyNs}/pipelineruns`, list: true });
    expect(nightlyRuns.body.items).toEqual([]);
  });

  it("a chain dev → nightly → prod: each link waits for its own soak, and prod records the branch dev follows", async () => {
    const b = await bed(
      { ...overlays("1"), "overlays/dev/app.yaml": configMap("dev-app", { v: "1" }) },
      {
        nightly: { repo: undefined, branch: undefined, promote: { from: "dev", soak: "1h" } },
        prod: { promote: { from: "nightly", soak: "1h" } },
        apps: ({ nightlyNs }) => [{ name: "dev", repo: "plumbing", branch: "main", path: "overlays/dev", cluster: "nightly", namespace: nightlyNs }],
      },
    );
    const r1 = await b.repo.head("main");
    let res = await b.cycle();
    expect([res.get("dev")?.kind, res.get("nightly")?.kind, res.get("prod")?.kind]).toEqual(["applied", "held", "held"]);
    b.advance(2 * H);
    res = await b.cycle();
    // nightly takes dev's revision; prod waits for nightly's own hour, not dev's.
    expect([res.get("nightly")?.kind, res.get("prod")?.kind]).toEqual(["applied", "held"]);
    expect(await b.live("nightly")).toEqual({ v: "1", env: "nightly" });
    expect(await b.live("prod")).toBeUndefined();
    b.advance(2 * H);
    res = await b.cycle();
    expect(res.get("prod")?.kind).toBe("applied");
    expect(await b.state("nightly", "nightly")).toMatchObject({ revision: r1, branch: "main" });
    expect(await b.state("prod", "prod")).toMatchObject({ revision: r1, branch: "main" });
    expect(await b.live("prod")).toEqual({ v: "1", env: "prod" });
  });
});
