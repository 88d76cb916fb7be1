// Waits as state: an app in a long post-check stays Verifying across rounds while its siblings on
// the same repo keep deploying; the check is created once, read each round, and its deadline comes
// from the state and the injected clock (so a restart resumes it, and the test never waits it out).
import { afterEach, describe, expect, it } from "vitest";
import { checkObjectName } from "../../src/checks/run.js";
import { parseProgress } from "../../src/reconcile/verify-progress.js";
import { testEnv } from "../setup/env.js";
import { configMap, getObject } from "./support.js";
import { finish, fleet, handClock, runs, runsOf, type Fleet } from "./fleet-support.js";

const open: Fleet[] = [];
afterEach(() => {
  for (const f of open.splice(0)) f.close();
});

const DAEMON = { deferWaits: true, backoff: true } as const;

/** A PipelineRun check no controller finishes unless the test plays Tekton. */
const smoke = {
  name: "smoke",
  timeout: "60s",
  pipelineRun: { manifest: { apiVersion: "tekton.dev/v1", kind: "PipelineRun", metadata: { name: "ignored" }, spec: { pipelineRef: { name: "smoke-tests" } } } },
};





describe("apps never wait on each other", () => {
  it("a sibling's new commit is applied the next round while an app sits in a 60 s post-check, which times out by the clock", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet(
      { "slow/cm.yaml": configMap("slow", { v: "1" }), "fast/cm.yaml": configMap("fast", { v: "1" }) },
      { slow: { path: "slow", checks: { post: [smoke] } }, fast: { path: "fast" } },
      {},
      { clock },
    );
    open.push(f);
    const cm = (key: string) => getObject(f.kube, `/api/v1/namespaces/${f.apps[key]!.namespace}/configmaps/${key}`);
    const rev1 = await f.repo.head("main");

    // Round 1: both applied; the slow one's check is started, not waited for.
    let res = await f.cycle(DAEMON);
    expect(res.fast).toMatchObject({ kind: "applied", revision: rev1 });
    expect(res.slow).toMatchObject({ kind: "verifying", revision: rev1 });
    expect((await f.state("fast"))?.phase).toBe("Ready");
    await finish(f.kube, `${runs(f, "slow")}/${checkObjectName(f.apps.slow!.name, "post", "smoke", rev1)}`);
    res = await f.cycle(DAEMON);
    expect(res.slow).toMatchObject({ kind: "applied", revision: rev1 });
    expect(await f.state("slow")).toMatchObject({ phase: "Ready", goodRevision: rev1 });

    // The slow app's next revision starts a check that does not finish.
    const rev2 = await f.repo.commit({ "slow/cm.yaml": configMap("slow", { v: "2" }) }, "slow v2");
    res = await f.cycle(DAEMON);
    expect(res.slow).toMatchObject({ kind: "verifying", revision: rev2 });
    const started = parseProgress((await f.state("slow"))?.verifyChecks).current;
    expect(started?.name).toBe("smoke");

    // The sibling's commit lands: applied on the very next round, the slow app still Verifying.
    const rev3 = await f.repo.commit({ "fast/cm.yaml": configMap("fast", { v: "2" }) }, "fast v2");
    clock.advance(30_000);
    res = await f.cycle(DAEMON);
    expect(res.fast).toMatchObject({ kind: "applied", revision: rev3 });
    expect((await cm("fast"))?.data).toEqual({ v: "2" });
    expect(await f.state("fast")).toMatchObject({ phase: "Ready", revision: rev3 });
    expect(res.slow).toMatchObject({ kind: "verifying", revision: rev2 });
    const slow = await f.state("slow");
    expect(slow).toMatchObject({ phase: "Verifying", revision: rev2 });
    // Created once and read since: the same run, started when it was.
    expect(parseProgress(slow?.verifyChecks).current).toEqual(started);
    const name2 = checkObjectName(f.apps.slow!.name, "post", "smoke", rev2);
    expect(await runsOf(f, "slow")).toContain(name2);

    // Past the check's deadline by the injected clock: the failure path of an inline wait (rollback).
    clock.advance(30_000);
    res = await f.cycle(DAEMON);
    expect(res.slow).toMatchObject({ kind: "rolledBack", revision: rev1, failedRevision: rev2 });
    const after = await f.state("slow");
    expect(after).toMatchObject({ phase: "Ready", revision: rev1, failedRevision: rev2 });
    expect(after?.verifyChecks).toBeUndefined();
    expect(after?.history.find((h) => h.revision === rev2)?.checks?.find((c) => c.phase === "post")).toMatchObject({ passed: false, reason: "Timeout" });
    expect((await cm("slow"))?.data).toEqual({ v: "1" });
  });

  it("a restart mid-Verifying resumes the same check, also from state written before the progress fields existed", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet({ "slow/cm.yaml": configMap("slow", { v: "1" }) }, { slow: { path: "slow", checks: { post: [smoke] } } }, {}, { clock });
    open.push(f);
    const rev = await f.repo.head("main");
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "verifying", revision: rev });
    const started = parseProgress((await f.state("slow"))?.verifyChecks).current;
    expect(started).toBeDefined();

    await f.restart();
    clock.advance(10_000);
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "verifying", revision: rev });
    expect(parseProgress((await f.state("slow"))?.verifyChecks).current).toEqual(started);

    // An older plumber's Verifying state: no healthyAt, no verifyChecks. The wait resumes, finding its run.
    const cmPath = `/api/v1/namespaces/${f.stateNamespace}/configmaps/plumber-app-${f.apps.slow!.name}`;
    await f.kube.request({ method: "PATCH", path: cmPath, contentType: "application/json-patch+json", body: JSON.stringify([{ op: "remove", path: "/data/healthyAt" }, { op: "remove", path: "/data/verifyChecks" }]) });
    await f.restart();
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "verifying", revision: rev });
    expect(await runsOf(f, "slow")).toEqual([checkObjectName(f.apps.slow!.name, "post", "smoke", rev)]);

    await finish(f.kube, `${runs(f, "slow")}/${checkObjectName(f.apps.slow!.name, "post", "smoke", rev)}`);
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "applied", revision: rev });
    const st = await f.state("slow");
    expect(st).toMatchObject({ phase: "Ready", goodRevision: rev });
    expect(st?.history[0]?.checks).toEqual([expect.objectContaining({ name: "smoke", phase: "post", passed: true })]);
  });
});

describe("dependsOn with waits as state", () => {
  it("holds a dependent while its dependency is Verifying, and applies it in the same round the dependency passes", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet(
      { "base/cm.yaml": configMap("base", { v: "1" }), "app/cm.yaml": configMap("app", { v: "1" }) },
      // The dependent comes first in the config: the round's waves put its dependency before it.
      { app: { path: "app", dependsOn: ["base"] }, base: { path: "base", checks: { post: [smoke] } } },
      {},
      { clock },
    );
    open.push(f);
    const rev = await f.repo.head("main");
    let res = await f.cycle(DAEMON);
    expect(res.base).toMatchObject({ kind: "verifying", revision: rev });
    expect(res.app).toMatchObject({ kind: "held", message: expect.stringContaining(`dependency ${f.apps.base!.name} is not healthy yet`) });

    await finish(f.kube, `${runs(f, "base")}/${checkObjectName(f.apps.base!.name, "post", "smoke", rev)}`);
    res = await f.cycle(DAEMON);
    expect(res.base).toMatchObject({ kind: "applied", revision: rev });
    expect(res.app).toMatchObject({ kind: "applied", revision: rev });
  });
});

describe("per-app backoff", () => {
  it("an app failing transiently sits out rounds by the clock; its sibling and the repo's listing keep the interval", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const env = testEnv();
    const f = await fleet(
      { "bad/cm.yaml": configMap("bad", { v: "1" }), "good/cm.yaml": configMap("good", { v: "1" }) },
      { bad: { path: "bad", cluster: "elsewhere" }, good: { path: "good" } },
      // The wrong-cluster guard fails the app's every reconcile before it writes: transient, as an unreachable cluster is.
      { clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }, { name: "elsewhere", kubeconfig: env.kubeconfigPath, expect: { kubeSystemUID: "00000000-0000-0000-0000-000000000000" } }] },
      { clock },
    );
    open.push(f);
    let res = await f.cycle(DAEMON);
    expect(res.bad).toMatchObject({ kind: "failed", permanent: false });
    expect(res.good?.kind).toBe("applied");
    expect(f.poller.nextDelay(() => 0.5)).toBe(1000);

    // One interval on (1 s): the failing app sits out, the sibling takes its new commit.
    const rev2 = await f.repo.commit({ "good/cm.yaml": configMap("good", { v: "2" }) }, "good v2");
    clock.advance(1000);
    res = await f.cycle(DAEMON);
    expect(Object.keys(res)).toEqual(["good"]);
    expect(res.good).toMatchObject({ kind: "applied", revision: rev2 });
    expect(f.poller.nextDelay(() => 0.5)).toBe(1000);

    // Its backoff (2 intervals) is over: tried again, fails again, now out for 4.
    clock.advance(1000);
    expect((await f.cycle(DAEMON)).bad).toMatchObject({ kind: "failed" });
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      expect(Object.keys(await f.cycle(DAEMON))).toEqual(["good"]);
    }
    clock.advance(1000);
    expect(Object.keys(await f.cycle(DAEMON)).sort()).toEqual(["bad", "good"]);

    // A round by hand (apply --once) tries every app.
    expect(Object.keys(await f.cycle()).sort()).toEqual(["bad", "good"]);
  });
});
