// Safe deploys against the real control plane: checks, health gating, rollback, approval,
// the wrong-cluster guard. Tests play the Tekton and Deployment controllers by writing status
// through the status subresource, as the real controllers would.
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { checkObjectName } from "../../src/checks/run.js";
import { kubeSystemUID } from "../../src/kube/identity.js";
import type { KubeClient } from "../../src/kube/client.js";
import type { ObservedEvent } from "../../src/observe/events.js";
import { ControlStore } from "../../src/state/control.js";
import { StateStore } from "../../src/state/store.js";
import { sleep } from "../../src/util/pool.js";
import { configMap, getObject, harness, markDeploymentReady, smokeCheck, type AppOptions, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

async function start(files: Record<string, string>, opts?: AppOptions): Promise<Harness> {
  const h = await harness(files, opts);
  open.push(h);
  return h;
}

const cmPath = (h: Harness, name: string) => `/api/v1/namespaces/${h.namespace}/configmaps/${name}`;
const deployPath = (h: Harness, name: string) => `/apis/apps/v1/namespaces/${h.namespace}/deployments/${name}`;
const prPath = (h: Harness, name: string) => `/apis/tekton.dev/v1/namespaces/${h.namespace}/pipelineruns/${name}`;


/** Waits for an object plumber creates, then plays its controller by writing its status. */
interface CheckRun {
  metadata: { labels?: Record<string, string> };
  spec: { params?: unknown[] };
}

async function finish(kube: KubeClient, path: string, succeeded: boolean, reason: string): Promise<CheckRun> {
  let obj: CheckRun | undefined;
  for (let i = 0; i < 300 && !(obj = await kube.getOptional(path)); i++) await sleep(50);
  if (!obj) throw new Error(`${path} never appeared`);
  await kube.request({
    method: "PATCH",
    path: `${path}/status`,
    contentType: "application/merge-patch+json",
    body: JSON.stringify({ status: { conditions: [{ type: "Succeeded", status: succeeded ? "True" : "False", reason, message: `${reason} (test)` }] } }),
  });
  return obj;
}

function deployment(name: string, image: string): string {
  return stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "main", image }] } },
    },
  });
}


describe("safe deploys", () => {
  it("a failed pre-check applies nothing and holds the app at its revision", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    const good = await h.repo.head("main");
    await h.cycle();
    await h.reconfigure({ app: { checks: { pre: [smokeCheck] } } });
    const bad = await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "v2");
    const cycle = h.cycle();
    const pr = await finish(h.kube, prPath(h, checkObjectName(h.app, "pre", "smoke", bad)), false, "TestsFailed");
    const res = await cycle;
    expect(res.kind).toBe("failed");
    if (res.kind === "failed") expect(res.message).toMatch(/pre-check smoke failed .*TestsFailed/);
    expect(pr.spec.params).toEqual([{ name: "revision", value: bad }]);
    expect(pr.metadata.labels).toMatchObject({ "plumber.dev/app": h.app, "plumber.dev/check": "smoke" });
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state).toMatchObject({ revision: good, failedRevision: bad });
    expect(state?.message).toContain("TestsFailed");

    h.counts();
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
  });

  it("a failed post-check rolls back to the last known good revision, prunes what it added, and records both", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) }, { app: { checks: { post: [smokeCheck] } } });
    const good = await h.repo.head("main");
    let cycle = h.cycle();
    await finish(h.kube, prPath(h, checkObjectName(h.app, "post", "smoke", good)), true, "Succeeded");
    expect((await cycle).kind).toBe("applied");

    const bad = await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }), "b.yaml": configMap("b", { added: "by-v2" }) }, "v2 adds b");
    cycle = h.cycle();
    await finish(h.kube, prPath(h, checkObjectName(h.app, "post", "smoke", bad)), false, "SmokeFailed");
    const res = await cycle;
    expect(res).toMatchObject({ kind: "rolledBack", revision: good, failedRevision: bad });
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
    expect(await getObject(h.kube, cmPath(h, "b"))).toBeUndefined();

    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state).toMatchObject({ revision: good, goodRevision: good, failedRevision: bad, lastResult: "RolledBack", phase: "Ready" });
    expect(state?.history.map((r) => `${r.result}:${r.revision.slice(0, 7)}`)).toEqual([
      `RolledBack:${good.slice(0, 7)}`,
      `Failed:${bad.slice(0, 7)}`,
      `Applied:${good.slice(0, 7)}`,
    ]);
    expect(state?.history[0]?.cause).toMatch(/post-check smoke failed/);
    expect(state?.history[1]?.checks?.find((c) => c.phase === "post")).toMatchObject({ passed: false, reason: "SmokeFailed" });

    // The failed revision is not tried again while the branch stays put.
    h.counts();
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
  });

  it("when the last known good fails too, it halts without flapping", async () => {
    const h = await start({ "web.yaml": deployment("web", "nginx:1.27") }, { app: { health: { timeout: "1s" } } });
    const cycle = h.cycle();
    await markDeploymentReady(h.kube, deployPath(h, "web"));
    expect((await cycle).kind).toBe("applied");

    // No controller rolls the new spec out: generation moves past observedGeneration, for the
    // new revision and again for the rollback.
    const bad = await h.repo.commit({ "web.yaml": deployment("web", "nginx:broken") }, "bad image");
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind === "failed") expect(res.message).toMatch(/rollback to .* failed too/);
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state).toMatchObject({ phase: "Halted", failedRevision: bad });

    h.counts();
    for (let i = 0; i < 3; i++) expect((await h.cycle()).kind).toBe("held");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
  });

  it("after a one-object commit, health judges the objects the sync left alone from its own LIST and reads the written one again", async () => {
    // A long interval: the drift look just before the commit is fresh for the whole test.
    const h = await start({ "web.yaml": deployment("web", "nginx:1.27"), "a.yaml": configMap("a", { v: "1" }) }, { interval: "10m" });
    const cycle = h.cycle();
    await markDeploymentReady(h.kube, deployPath(h, "web"));
    expect((await cycle).kind).toBe("applied");
    h.counts();
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts().lists).toBe(2);

    await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "v2");
    expect((await h.cycle()).kind).toBe("applied");
    // The drift look's LIST stands in for the plan's (nothing was written since), and health
    // lists nothing either.
    expect(h.counts().lists).toBe(0);
  });

  it("an object the commit did not touch that went unhealthy still fails health gating of the new revision", async () => {
    const h = await start({ "web.yaml": deployment("web", "nginx:1.27"), "a.yaml": configMap("a", { v: "1" }) }, { app: { health: { timeout: "1s" } } });
    const cycle = h.cycle();
    await markDeploymentReady(h.kube, deployPath(h, "web"));
    expect((await cycle).kind).toBe("applied");
    // Its controller now says it lost its replicas (status only: plumber's fields are untouched).
    await h.kube.request({
      method: "PATCH",
      path: `${deployPath(h, "web")}/status`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ status: { readyReplicas: 0, availableReplicas: 0, updatedReplicas: 0, conditions: [{ type: "Available", status: "False", reason: "MinimumReplicasUnavailable", message: "lost" }] } }),
    });
    await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "v2");
    const res = await h.cycle();
    expect(res.kind === "rolledBack" || res.kind === "failed").toBe(true);
    expect(JSON.stringify(res)).toMatch(/health/);
    expect(JSON.stringify(res)).toMatch(/Deployment\/[^/]+\/web/);
  });

  it("a restart in the middle of a health wait resumes the wait instead of applying again", async () => {
    const events: ObservedEvent[] = [];
    const h = await start({ "web.yaml": deployment("web", "nginx:1.27") }, { app: { health: { timeout: "60s" } }, observer: { observe: (e) => events.push(e) } });
    const told = () => events.flatMap((e) => ((e.type === "cycle" || e.type === "deploy") && e.app === h.app ? [`${e.type}:${e.outcome}`] : []));
    const abort = new AbortController();
    const first = h.cycle(abort.signal).catch((e: unknown) => e);
    const store = new StateStore(h.kube, h.stateNamespace);
    for (let i = 0; i < 200 && (await store.load(h.app))?.phase !== "Verifying"; i++) await sleep(50);
    abort.abort(); // plumber stops while it waits for health
    expect(await first).toBeInstanceOf(Error);

    await h.restart();
    const resumed = h.cycle();
    await markDeploymentReady(h.kube, deployPath(h, "web"));
    const r = await resumed;
    expect(r).toMatchObject({ kind: "applied" });
    const c = h.counts();
    expect(c.dryRuns).toBe(0);
    expect(c.writes).toBe(1); // the state record only: the Deployment is not applied again
    expect((await store.load(h.app))?.phase).toBe("Ready");
    // One cycle event per reconcile, the one cut short as aborted (not failed); deployed once.
    expect(told()).toEqual(["cycle:aborted", "deploy:deployed", "cycle:applied"]);
  });

  it("manual approval holds a new revision until it is approved", async () => {
    const events: ObservedEvent[] = [];
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) }, { app: { approval: "manual" }, observer: { observe: (e) => events.push(e) } });
    const rev = await h.repo.head("main");
    const res = await h.cycle();
    expect(res.kind).toBe("held");
    expect(await getObject(h.kube, cmPath(h, "a"))).toBeUndefined();
    const store = new StateStore(h.kube, h.stateNamespace);
    expect(await store.load(h.app)).toMatchObject({ phase: "WaitingApproval", pendingRevision: rev });
    expect((await store.load(h.app))?.message).toMatch(/1 to create/);

    h.counts();
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });

    await new ControlStore(h.kube, h.stateNamespace).update(h.app, { approvedRevision: rev });
    expect((await h.cycle()).kind).toBe("applied");
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
    // approvalNeeded is told once (not per held cycle); every cycle ends in one cycle event.
    expect(events.flatMap((e) => (e.type === "deploy" && e.app === h.app ? [e.outcome] : []))).toEqual(["approvalNeeded", "deployed"]);
    const cycles = events.flatMap((e) => (e.type === "cycle" && e.app === h.app ? [e] : []));
    expect(cycles.map((e) => e.outcome)).toEqual(["held", "held", "applied"]);
    expect(cycles[2]).toMatchObject({ revision: rev, changes: "1 created" });
  });

  it("a write plumber refuses itself (standby) fails the cycle as transient with errorReason WriteRefused; the revision goes out later", async () => {
    const events: ObservedEvent[] = [];
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) }, { observer: { observe: (e) => events.push(e) } });
    expect((await h.cycle()).kind).toBe("applied");
    const client = h.rt.clusters.get("local")?.client;
    if (!client) throw new Error("no cluster connection");
    client.writeGate = () => "this replica is not the leader";
    // An object that changes (its write refused), and a new one (the intent record, a state write, refused first).
    const v2 = await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "v2");
    expect(await h.cycle()).toMatchObject({ kind: "failed", revision: v2, permanent: false, errorReason: "WriteRefused" });
    const v3 = await h.repo.commit({ "b.yaml": configMap("b", { v: "1" }) }, "v3");
    expect(await h.cycle()).toMatchObject({ kind: "failed", revision: v3, permanent: false, errorReason: "WriteRefused" });
    const failedCycles = events.flatMap((e) => (e.type === "cycle" && e.app === h.app && e.outcome === "failed" ? [e] : []));
    expect(failedCycles.map((e) => e.errorReason)).toEqual(["WriteRefused", "WriteRefused"]);
    // Not held as failed for good: once writes are allowed again the same revision is applied.
    client.writeGate = undefined;
    expect(await h.cycle()).toMatchObject({ kind: "applied", revision: v3 });
    expect((await getObject(h.kube, cmPath(h, "b")))?.data).toEqual({ v: "1" });
  });

  it("the wrong-cluster guard refuses with a clear error and writes nothing", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) }, { cluster: { expect: { kubeSystemUID: "00000000-0000-0000-0000-000000000000" } } });
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    const uid = await kubeSystemUID(h.kube);
    if (res.kind === "failed") {
      expect(res.message).toContain("wrong cluster");
      expect(res.message).toContain("00000000-0000-0000-0000-000000000000");
      expect(res.message).toContain(uid);
    }
    expect(h.counts().writes).toBe(0);
    expect(await getObject(h.kube, cmPath(h, "a"))).toBeUndefined();

    await h.reconfigure({ cluster: { expect: { kubeSystemUID: uid } } });
    expect((await h.cycle()).kind).toBe("applied");
  });

  it("plumber rollback pins an earlier revision until resume", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    const first = await h.repo.head("main");
    await h.cycle();
    await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "v2");
    await h.cycle();
    const control = new ControlStore(h.kube, h.stateNamespace);
    await control.update(h.app, { pinRevision: first });
    expect((await h.cycle()).kind).toBe("applied");
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
    await h.repo.commit({ "a.yaml": configMap("a", { v: "3" }) }, "v3");
    expect((await h.cycle()).kind).toBe("unchanged"); // pinned: the new head waits
    await control.update(h.app, { pinRevision: null });
    expect((await h.cycle()).kind).toBe("applied");
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "3" });
  });
});
