// Pre-checks and a rollback's health wait as state: under `plumber run` each round looks once, the
// app's revision stays pending (or the rollback Verifying) across rounds, the check object is
// created once and found again after a restart, and the deadlines come from the state and the
// injected clock, so the tests move time instead of waiting it out.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { findRepoRoot } from "../bed/paths.js";
import { checkObjectName } from "../../src/checks/run.js";
import { parsePreChecks } from "../../src/reconcile/verify-progress.js";
import { tempDir } from "../setup/env.js";
import { configMap, getObject, markDeploymentReady } from "./support.js";
import { finish, fleet, handClock, runs, runsOf, type Fleet } from "./fleet-support.js";

const open: Fleet[] = [];
afterEach(() => {
  for (const f of open.splice(0)) f.close();
});

const DAEMON = { deferWaits: true, backoff: true } as const;
const MAIN = join(findRepoRoot(), "dist", "src", "cli", "main.js");

/** A PipelineRun pre-check no controller finishes unless the test plays Tekton; the default timeout (10 min). */
const gate = {
  name: "gate",
  pipelineRun: { manifest: { apiVersion: "tekton.dev/v1", kind: "PipelineRun", metadata: { name: "ignored" }, spec: { pipelineRef: { name: "gate-tests" } } } },
};


const preRun = (f: Fleet, key: string, rev: string) => `${runs(f, key)}/${checkObjectName(f.apps[key]!.name, "pre", "gate", rev)}`;
const cm = (f: Fleet, key: string) => getObject(f.kube, `/api/v1/namespaces/${f.apps[key]!.namespace}/configmaps/${key}`);



async function preProgress(f: Fleet, key: string) {
  return parsePreChecks((await f.state(key))?.preChecks);
}

function plumberStatus(f: Fleet, cacheDir: string): Promise<Record<string, string>[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, "--config", f.configFile, "--cache-dir", cacheDir, "--log-level", "warn", "status", "--json"], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`plumber status failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, string>[]);
    });
  });
}

describe("pre-checks hold no worker", () => {
  it("a sibling's commit is applied the next round while an app sits in a long pre-check, which times out by the clock and applies nothing", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet(
      { "slow/cm.yaml": configMap("slow", { v: "1" }), "fast/cm.yaml": configMap("fast", { v: "1" }) },
      { slow: { path: "slow", checks: { pre: [gate] } }, fast: { path: "fast" } },
      {},
      { clock },
    );
    open.push(f);
    const rev1 = await f.repo.head("main");

    // Round 1: the sibling applied; the slow app's pre-check started, not waited for, nothing of it applied.
    let res = await f.cycle(DAEMON);
    expect(res.fast).toMatchObject({ kind: "applied", revision: rev1 });
    expect(res.slow).toMatchObject({ kind: "checking", revision: rev1 });
    expect(await cm(f, "slow")).toBeUndefined();
    await finish(f.kube, preRun(f, "slow", rev1));
    res = await f.cycle(DAEMON);
    expect(res.slow).toMatchObject({ kind: "applied", revision: rev1 });
    const first = await f.state("slow");
    expect(first).toMatchObject({ phase: "Ready", revision: rev1 });
    expect(first?.preChecks).toBeUndefined();
    expect(first?.history[0]?.checks).toEqual([expect.objectContaining({ name: "gate", phase: "pre", passed: true })]);

    // The slow app's next revision: a pre-check that does not finish.
    const rev2 = await f.repo.commit({ "slow/cm.yaml": configMap("slow", { v: "2" }) }, "slow v2");
    res = await f.cycle(DAEMON);
    expect(res.slow).toMatchObject({ kind: "checking", revision: rev2, message: expect.stringContaining("waits for pre-check gate") });
    const started = (await preProgress(f, "slow"))?.current;
    expect(started).toEqual({ name: "gate", startedAt: clock.now().toISOString() });

    // The sibling's commit lands: applied the very next round. For the slow app it is a newer commit
    // that renders the same, so its pre-check goes on (the same run), for the newer revision.
    const rev3 = await f.repo.commit({ "fast/cm.yaml": configMap("fast", { v: "2" }) }, "fast v2");
    clock.advance(5 * 60_000);
    res = await f.cycle(DAEMON);
    expect(res.fast).toMatchObject({ kind: "applied", revision: rev3 });
    expect((await cm(f, "fast"))?.data).toEqual({ v: "2" });
    expect(res.slow).toMatchObject({ kind: "checking", revision: rev3 });
    const waiting = await f.state("slow");
    // The cluster is still Ready at rev1; the newest revision is pending and the status says what it waits for.
    expect(waiting).toMatchObject({ phase: "Ready", revision: rev1, pendingRevision: rev3 });
    expect(waiting?.message).toContain(`pre-check gate (PipelineRun/${f.apps.slow!.namespace}/${checkObjectName(f.apps.slow!.name, "pre", "gate", rev2)})`);
    expect(await preProgress(f, "slow")).toEqual({ revision: rev3, runsFor: rev2, done: [], current: started });
    expect((await cm(f, "slow"))?.data).toEqual({ v: "1" });
    const rows = await plumberStatus(f, await tempDir("status-cache"));
    expect(rows.find((r) => r.app === f.apps.slow!.name)).toMatchObject({ phase: "Ready", revision: rev1.slice(0, 12), pending: rev3.slice(0, 12), message: expect.stringContaining("waits for pre-check gate") });

    // Past the default 10 min by the injected clock: the pre-check fails; nothing is applied.
    clock.advance(5 * 60_000);
    res = await f.cycle(DAEMON);
    expect(res.slow).toMatchObject({ kind: "failed", revision: rev3, permanent: true, message: expect.stringContaining("pre-check gate failed") });
    const after = await f.state("slow");
    expect(after).toMatchObject({ phase: "Ready", revision: rev1, failedRevision: rev3, lastResult: "Failed" });
    expect(after?.preChecks).toBeUndefined();
    expect(after?.history[0]).toMatchObject({ revision: rev3, result: "Failed" });
    expect(after?.history[0]?.checks).toEqual([expect.objectContaining({ name: "gate", phase: "pre", passed: false, reason: "Timeout" })]);
    expect((await cm(f, "slow"))?.data).toEqual({ v: "1" });
    // Held at its failure: no second run.
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "held", revision: rev3 });
    expect(await runsOf(f, "slow")).toEqual([rev1, rev2].map((r) => checkObjectName(f.apps.slow!.name, "pre", "gate", r)).sort());
  });

  it("a restart mid-pre-check resumes the same check object; a raised timeout counts from the check's start", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet({ "slow/cm.yaml": configMap("slow", { v: "1" }) }, { slow: { path: "slow", checks: { pre: [{ ...gate, timeout: "60s" }] } } }, {}, { clock });
    open.push(f);
    const rev = await f.repo.head("main");
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "checking", revision: rev });
    const started = (await preProgress(f, "slow"))?.current;
    expect(started?.name).toBe("gate");

    // A new process (as after kill -9), knowing only what the cluster holds.
    await f.restart();
    clock.advance(30_000);
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "checking", revision: rev });
    expect((await preProgress(f, "slow"))?.current).toEqual(started);
    expect(await runsOf(f, "slow")).toEqual([checkObjectName(f.apps.slow!.name, "pre", "gate", rev)]);

    // The config raises the timeout to 120 s: at 90 s the check still runs (under 60 s it would have timed out).
    const config = parse(await readFile(f.configFile, "utf8")) as { apps: { checks: { pre: { timeout: string }[] } }[] };
    config.apps[0]!.checks.pre[0]!.timeout = "120s";
    await writeFile(f.configFile, stringify(config));
    await f.restart();
    clock.advance(60_000);
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "checking", revision: rev, message: expect.stringContaining(`until ${new Date(Date.parse(started!.startedAt) + 120_000).toISOString()}`) });
    expect((await preProgress(f, "slow"))?.current).toEqual(started);

    await finish(f.kube, preRun(f, "slow", rev));
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "applied", revision: rev });
    expect(await runsOf(f, "slow")).toEqual([checkObjectName(f.apps.slow!.name, "pre", "gate", rev)]);
    expect((await cm(f, "slow"))?.data).toEqual({ v: "1" });
    expect(await f.state("slow")).toMatchObject({ phase: "Ready", revision: rev });
  });

  it("a newer commit supersedes a revision whose pre-check runs; a round by hand waits inline", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet({ "slow/cm.yaml": configMap("slow", { v: "1" }) }, { slow: { path: "slow", checks: { pre: [gate] } } }, {}, { clock });
    open.push(f);
    const rev1 = await f.repo.head("main");
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "checking", revision: rev1 });

    const rev2 = await f.repo.commit({ "slow/cm.yaml": configMap("slow", { v: "2" }) }, "slow v2");
    clock.advance(1000);
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "checking", revision: rev2 });
    const st = await f.state("slow");
    expect(st).toMatchObject({ pendingRevision: rev2 });
    expect(parsePreChecks(st?.preChecks)).toMatchObject({ revision: rev2, done: [] });
    expect(parsePreChecks(st?.preChecks)?.current).toEqual({ name: "gate", startedAt: clock.now().toISOString() });
    expect(await runsOf(f, "slow")).toEqual([checkObjectName(f.apps.slow!.name, "pre", "gate", rev1), checkObjectName(f.apps.slow!.name, "pre", "gate", rev2)].sort());
    // The superseded revision's run finishing applies nothing of it.
    await finish(f.kube, preRun(f, "slow", rev1));
    expect((await f.cycle(DAEMON)).slow).toMatchObject({ kind: "checking", revision: rev2 });
    expect(await cm(f, "slow")).toBeUndefined();

    // A round by hand (apply --once) waits for the run it finds, then applies.
    const inline = f.cycle();
    await finish(f.kube, preRun(f, "slow", rev2));
    expect((await inline).slow).toMatchObject({ kind: "applied", revision: rev2 });
    expect((await cm(f, "slow"))?.data).toEqual({ v: "2" });
    const done = await f.state("slow");
    expect(done).toMatchObject({ phase: "Ready", revision: rev2 });
    expect(done?.preChecks).toBeUndefined();
    expect(done?.pendingRevision).toBeUndefined();
  });
});

function deployment(name: string, image: string): string {
  return stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "main", image }] } } },
  });
}

/** Plays the Deployment controller: the current generation rolled out and available. */

describe("a rollback's health wait holds no worker", () => {
  it("the rolled-back revision reaches Ready over later rounds (also across a restart) while a sibling proceeds", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet(
      { "web/web.yaml": deployment("web", "nginx:1.27"), "fast/cm.yaml": configMap("fast", { v: "1" }) },
      { web: { path: "web", health: { timeout: "60s" } }, fast: { path: "fast" } },
      {},
      { clock },
    );
    open.push(f);
    const web = `/apis/apps/v1/namespaces/${f.apps.web!.namespace}/deployments/web`;
    const good = await f.repo.head("main");
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "verifying", revision: good });
    await markDeploymentReady(f.kube, web);
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "applied", revision: good });

    // No controller rolls the new spec out: health times out by the clock, the rollback re-applies
    // the good spec (a new generation), and its health is looked at once, not waited for.
    const bad = await f.repo.commit({ "web/web.yaml": deployment("web", "nginx:broken") }, "bad image");
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "verifying", revision: bad });
    clock.advance(61_000);
    const rollbackAt = clock.now().toISOString();
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "verifying", revision: good, message: expect.stringContaining(`rolling back from ${bad.slice(0, 12)}`) });
    const rolling = await f.state("web");
    expect(rolling).toMatchObject({ phase: "Verifying", revision: good, rollbackFrom: bad, failedRevision: bad, verifyStartedAt: rollbackAt });
    expect(rolling?.message).toContain(`rolling back to ${good.slice(0, 12)}`);
    expect((await getObject<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(f.kube, web))?.spec.template.spec.containers[0]?.image).toBe("nginx:1.27");

    // The sibling's commit is applied meanwhile; the rollback still waits, also after a restart.
    const rev3 = await f.repo.commit({ "fast/cm.yaml": configMap("fast", { v: "2" }) }, "fast v2");
    clock.advance(10_000);
    let res = await f.cycle(DAEMON);
    expect(res.fast).toMatchObject({ kind: "applied", revision: rev3 });
    expect(res.web).toMatchObject({ kind: "verifying", revision: good });
    await f.restart();
    clock.advance(10_000);
    res = await f.cycle(DAEMON);
    expect(res.web).toMatchObject({ kind: "verifying", revision: good });
    expect(await f.state("web")).toMatchObject({ phase: "Verifying", rollbackFrom: bad, verifyStartedAt: rollbackAt });

    await markDeploymentReady(f.kube, web);
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "rolledBack", revision: good, failedRevision: bad });
    const st = await f.state("web");
    expect(st).toMatchObject({ phase: "Ready", revision: good, goodRevision: good, failedRevision: bad, lastResult: "RolledBack" });
    expect(st?.rollbackFrom).toBeUndefined();
    expect(st?.history.map((r) => `${r.result}:${r.revision.slice(0, 7)}`)).toEqual([`RolledBack:${good.slice(0, 7)}`, `Failed:${bad.slice(0, 7)}`, `Applied:${good.slice(0, 7)}`]);
    expect(st?.history[0]).toMatchObject({ startedAt: rollbackAt, finishedAt: clock.now().toISOString(), cause: expect.stringContaining(`${bad}: health`) });
    // The sibling's commit is a newer revision of this app too: taken up only now that the rollback is done.
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "verifying", revision: rev3 });
  });

  it("a rollback whose health passes its deadline by the clock halts, as an inline one does", async () => {
    const clock = handClock("2026-06-01T12:00:00Z");
    const f = await fleet({ "web/web.yaml": deployment("web", "nginx:1.27") }, { web: { path: "web", health: { timeout: "60s" } } }, {}, { clock });
    open.push(f);
    const web = `/apis/apps/v1/namespaces/${f.apps.web!.namespace}/deployments/web`;
    const good = await f.repo.head("main");
    await f.cycle(DAEMON);
    await markDeploymentReady(f.kube, web);
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "applied", revision: good });
    const bad = await f.repo.commit({ "web/web.yaml": deployment("web", "nginx:broken") }, "bad image");
    await f.cycle(DAEMON);
    clock.advance(61_000);
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "verifying", revision: good });
    clock.advance(59_000);
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "verifying", revision: good });
    clock.advance(1000);
    const res = await f.cycle(DAEMON);
    expect(res.web).toMatchObject({ kind: "failed", revision: bad, permanent: true, message: expect.stringMatching(/rollback to .* failed too: health/) });
    expect(await f.state("web")).toMatchObject({ phase: "Halted", failedRevision: bad });
    expect((await f.cycle(DAEMON)).web).toMatchObject({ kind: "held", revision: bad });
  });
});
