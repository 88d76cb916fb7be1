// Scheduled releases against the real kube-apiserver (Tekton CRDs installed) and the real git
// smart-HTTP server. The scheduler's clock is the test's: every tick gets its "now". Nothing plays
// Tekton's or the Job controller's part except the tests, which write run status through the
// status subresource.
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { ReleaseConfig } from "../../src/config/types.js";
import { createGitHttp, type GitHttpClient } from "../../src/git/http.js";
import { GitRepo } from "../../src/git/repo.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { Discovery } from "../../src/kube/discovery.js";
import { silentLogger } from "../../src/log.js";
import { ReleaseScheduler, type ReleaseEvent } from "../../src/releases/scheduler.js";
import type { ReleaseState } from "../../src/state/release.js";
import type { TestRepo } from "../bed/testrepo.js";
import { StateStore, type AppState } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const env = testEnv();
let admin: KubeClient;

beforeAll(async () => {
  admin = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
});
afterAll(() => admin?.close());

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

function pipelineRunTemplate(extraParams: { name: string; value: string }[] = []): string {
  return stringify({
    apiVersion: "tekton.dev/v1",
    kind: "PipelineRun",
    metadata: { generateName: "pipeline-release-", labels: { "tekton.dev/pipeline": "release" } },
    spec: {
      pipelineRef: { name: "release" },
      params: [
        { name: "gitRevision", value: "$(plumber.revision)" },
        { name: "versionTag", value: "$(plumber.params.versionTag)" },
        { name: "releaseBucket", value: "$(plumber.params.bucket)/$(plumber.date:YYYY-MM-DD)" },
        { name: "imageRegistryPath", value: "$(params.registry)" },
        ...extraParams,
      ],
      taskRunTemplate: { serviceAccountName: "release-right-meow" },
    },
  });
}

interface Bed {
  repo: TestRepo;
  namespace: string;
  stateNamespace: string;
  release: ReleaseConfig;
  /** A new plumber: its own KubeClient, git HTTP client and git cache. */
  plumber(opts?: { events?: ReleaseEvent[]; appState?: (app: string) => Promise<AppState | undefined> }): Promise<ReleaseScheduler>;
  state(): Promise<ReleaseState | undefined>;
  runs(resource?: string, group?: string): Promise<Run[]>;
}

/** A PipelineRun, TaskRun or Job as these tests read it back. */
interface Run {
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    status?: string;
    params: { name: string; value: string }[];
    template: { spec: { containers: { args: string[] }[] } };
  };
}

async function bed(over: Partial<ReleaseConfig> = {}, files: Record<string, string> = {}): Promise<Bed> {
  const repo = await newTestRepo("rel");
  await repo.commit({ "tekton/release.yaml": pipelineRunTemplate(), ...files }, "release pipeline");
  const namespace = uniqueName("rel-ns");
  const stateNamespace = uniqueName("state");
  await admin.request({
    method: "POST",
    path: "/api/v1/namespaces",
    body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }),
  });
  const release: ReleaseConfig = {
    name: uniqueName("nightly"),
    schedule: "0 2 * * *",
    timezone: "UTC",
    repo: "plumbing",
    branch: "main",
    cluster: "local",
    namespace,
    suspend: false,
    template: { path: "tekton/release.yaml" },
    params: { versionTag: "$(plumber.versionTag)", bucket: "gs://tekton-releases-nightly/pipeline" },
    revision: { kind: "head" },
    concurrency: "forbid",
    skipIfUnchanged: false,
    ...over,
  };
  return {
    repo,
    namespace,
    stateNamespace,
    release,
    async plumber(opts = {}) {
      const client = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
      const http: GitHttpClient = createGitHttp({ auth: { token: env.gitToken }, timeoutMs: 30_000 });
      closers.push(() => {
        client.close();
        http.close();
      });
      const gitRepo = new GitRepo({ url: env.gitUrl(repo.name), http, cacheDir: await tempDir("rel-cache") });
      return new ReleaseScheduler({
        release,
        repo: gitRepo,
        http,
        client,
        discovery: new Discovery(client),
        stateNamespace,
        log: silentLogger(),
        ...(opts.events ? { onEvent: (e: ReleaseEvent) => opts.events!.push(e) } : {}),
        ...(opts.appState ? { appState: opts.appState } : {}),
      });
    },
    async state() {
      const s = await admin.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${stateNamespace}/configmaps/plumber-release-${release.name}`);
      if (!s) return undefined;
      return { release: release.name, since: s.data.since!, lastSlot: s.data.lastSlot, releasedRevision: s.data.releasedRevision, history: JSON.parse(s.data.history ?? "[]") } as ReleaseState;
    },
    async runs(resource = "pipelineruns", group = "apis/tekton.dev/v1") {
      const res = await admin.request<{ items: Run[] }>({
        method: "GET",
        path: `/${group}/namespaces/${namespace}/${resource}`,
        query: { labelSelector: `plumber.dev/release=${release.name}` },
      });
      return res.body.items.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
    },
  };
}

async function setStatus(path: string, status: Record<string, unknown>): Promise<void> {
  await admin.request({ method: "PATCH", path: `${path}/status`, contentType: "application/merge-patch+json", body: JSON.stringify({ status }) });
}

const prPath = (b: Bed, name: string) => `/apis/tekton.dev/v1/namespaces/${b.namespace}/pipelineruns/${name}`;
const succeeded = (status: "True" | "False", reason: string, message: string) => ({
  conditions: [{ type: "Succeeded", status, reason, message, lastTransitionTime: "2026-11-21T02:41:00Z" }],
});

const T0 = new Date("2026-11-21T01:00:00Z"); // first sight of the release
const SLOT1 = new Date("2026-11-21T02:00:00Z");
const SLOT2 = new Date("2026-11-22T02:00:00Z");
const SLOT3 = new Date("2026-11-23T02:00:00Z");
const after = (d: Date, ms: number) => new Date(d.getTime() + ms);

describe("scheduled releases", () => {
  it("creates a PipelineRun from the repo's template with params substituted, and tracks its outcome", async () => {
    const b = await bed();
    const head = await b.repo.head("main");
    const events: ReleaseEvent[] = [];
    const s = await b.plumber({ events });

    const first = await s.tick(T0);
    expect(first.events).toEqual([]);
    expect(first.next?.toISOString()).toBe(SLOT1.toISOString());
    expect((await b.state())?.since).toBe(T0.toISOString());
    expect(await b.runs()).toHaveLength(0);

    await s.tick(after(SLOT1, 2_000));
    const runs = await b.runs();
    expect(runs.map((r) => r.metadata.name)).toEqual([`${b.release.name}-202611210200`]);
    const pr = runs[0]!;
    expect(pr.metadata.labels).toMatchObject({
      "plumber.dev/release": b.release.name,
      "plumber.dev/release-slot": "202611210200",
      "tekton.dev/pipeline": "release",
    });
    expect(pr.metadata.annotations["plumber.dev/revision"]).toBe(head);
    expect(pr.spec.params).toEqual([
      { name: "gitRevision", value: head },
      { name: "versionTag", value: `v20261121-${head.slice(0, 10)}` },
      { name: "releaseBucket", value: "gs://tekton-releases-nightly/pipeline/2026-11-21" },
      { name: "imageRegistryPath", value: "$(params.registry)" },
    ]);
    expect(events.map((e) => e.type)).toEqual(["fired"]);
    let st = await b.state();
    expect(st?.lastSlot).toBe(SLOT1.toISOString());
    expect(st?.history[0]).toMatchObject({ slot: SLOT1.toISOString(), result: "Running", run: pr.metadata.name, revision: head, trigger: "scheduled" });

    // Still going: nothing changes, nothing is written.
    await s.tick(after(SLOT1, 60_000));
    expect(events).toHaveLength(1);

    await setStatus(prPath(b, pr.metadata.name), succeeded("True", "Succeeded", "Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0"));
    await s.tick(after(SLOT1, 120_000));
    st = await b.state();
    expect(st?.history[0]).toMatchObject({
      result: "Succeeded",
      reason: "Succeeded",
      message: "Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0",
      finishedAt: "2026-11-21T02:41:00Z",
    });
    expect(events.map((e) => e.type)).toEqual(["fired", "finished"]);
    expect(events[1]?.record?.result).toBe("Succeeded");

    // A failed run is recorded with its reason and message.
    await s.tick(after(SLOT2, 1_000));
    const second = `${b.release.name}-202611220200`;
    await setStatus(prPath(b, second), succeeded("False", "Failed", "Tasks Completed: 2 (Failed: 1, Cancelled 0)"));
    await s.tick(after(SLOT2, 60_000));
    expect((await b.state())?.history[0]).toMatchObject({ run: second, result: "Failed", reason: "Failed", message: "Tasks Completed: 2 (Failed: 1, Cancelled 0)" });
  });

  it("forbid: a slot whose previous run is still going is skipped; the next one fires once it finished", async () => {
    const b = await bed({ concurrency: "forbid" });
    const s = await b.plumber();
    await s.tick(T0);
    await s.tick(SLOT1);
    const res = await s.tick(SLOT2);
    expect(res.events.map((e) => e.type)).toEqual(["skipped"]);
    expect((await b.runs()).map((r) => r.metadata.name)).toEqual([`${b.release.name}-202611210200`]);
    const st = await b.state();
    expect(st?.history[0]).toMatchObject({ slot: SLOT2.toISOString(), result: "Skipped", message: `${b.release.name}-202611210200 still running (concurrency: forbid)` });
    expect(st?.lastSlot).toBe(SLOT2.toISOString());

    await setStatus(prPath(b, `${b.release.name}-202611210200`), succeeded("True", "Succeeded", "done"));
    await s.tick(SLOT3);
    expect((await b.runs()).map((r) => r.metadata.name)).toEqual([`${b.release.name}-202611210200`, `${b.release.name}-202611230200`]);
  });

  it("replace: cancels the running PipelineRun (spec.status Cancelled) and creates the new one", async () => {
    const b = await bed({ concurrency: "replace" });
    const events: ReleaseEvent[] = [];
    const s = await b.plumber({ events });
    await s.tick(T0);
    await s.tick(SLOT1);
    await s.tick(SLOT2);
    const runs = await b.runs();
    expect(runs.map((r) => [r.metadata.name, r.spec.status])).toEqual([
      [`${b.release.name}-202611210200`, "Cancelled"],
      [`${b.release.name}-202611220200`, undefined],
    ]);
    const st = await b.state();
    expect(st?.history.slice(0, 2)).toMatchObject([
      { run: `${b.release.name}-202611220200`, result: "Running" },
      { run: `${b.release.name}-202611210200`, result: "Cancelled", reason: "Replaced" },
    ]);
    expect(events.map((e) => e.type)).toEqual(["fired", "cancelled", "fired"]);
  });

  it("replace: a running Job is deleted; a TaskRun is cancelled with TaskRunCancelled", async () => {
    const job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { labels: { app: "release" } },
      spec: {
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "release", image: "alpine:3.20", args: ["echo", "$(plumber.versionTag)"] }],
          },
        },
      },
    };
    const b = await bed({ concurrency: "replace", template: { inline: job } });
    const s = await b.plumber();
    await s.tick(T0);
    await s.tick(SLOT1);
    const jobs = await b.runs("jobs", "apis/batch/v1");
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.spec.template.spec.containers[0]?.args[1]).toMatch(/^v20261121-[0-9a-f]{10}$/);
    const r2 = await s.tick(SLOT2);
    expect(r2.events.map((e) => e.type)).toEqual(["cancelled", "fired"]);
    expect((await b.runs("jobs", "apis/batch/v1")).map((j) => j.metadata.name)).toEqual([`${b.release.name}-202611220200`]);

    const taskRun = { apiVersion: "tekton.dev/v1", kind: "TaskRun", spec: { taskRef: { name: "release" } } };
    const t = await bed({ concurrency: "replace", template: { inline: taskRun } });
    const ts = await t.plumber();
    await ts.tick(T0);
    await ts.tick(SLOT1);
    await ts.tick(SLOT2);
    expect((await t.runs("taskruns")).map((r) => [r.metadata.name, r.spec.status])).toEqual([
      [`${t.release.name}-202611210200`, "TaskRunCancelled"],
      [`${t.release.name}-202611220200`, undefined],
    ]);
  });

  it("tracks a Job's outcome from its Failed and Complete conditions", async () => {
    const job = {
      apiVersion: "batch/v1",
      kind: "Job",
      spec: { backoffLimit: 0, template: { spec: { restartPolicy: "Never", containers: [{ name: "x", image: "alpine:3.20" }] } } },
    };
    const b = await bed({ concurrency: "allow", template: { inline: job } });
    const s = await b.plumber();
    await s.tick(T0);
    await s.tick(SLOT1);
    await s.tick(SLOT2);
    const path = (slot: string) => `/apis/batch/v1/namespaces/${b.namespace}/jobs/${b.release.name}-${slot}`;
    const start = "2026-11-21T02:00:05Z";
    await setStatus(path("202611210200"), {
      startTime: start,
      conditions: [
        { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: "2026-11-21T02:05:00Z" },
        { type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: "2026-11-21T02:05:00Z" },
      ],
    });
    await setStatus(path("202611220200"), {
      startTime: "2026-11-22T02:00:05Z",
      completionTime: "2026-11-22T02:03:00Z",
      succeeded: 1,
      conditions: [
        { type: "SuccessCriteriaMet", status: "True", lastTransitionTime: "2026-11-22T02:03:00Z" },
        { type: "Complete", status: "True", lastTransitionTime: "2026-11-22T02:03:00Z" },
      ],
    });
    await s.tick(after(SLOT2, 300_000));
    const st = await b.state();
    expect(st?.history.slice(0, 2)).toMatchObject([
      { run: `${b.release.name}-202611220200`, result: "Succeeded", finishedAt: "2026-11-22T02:03:00Z" },
      { run: `${b.release.name}-202611210200`, result: "Failed", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" },
    ]);
  });

  it("skipIfUnchanged: a slot whose revision was released already does not fire; a new commit does", async () => {
    const b = await bed({ skipIfUnchanged: true, concurrency: "allow" });
    const s = await b.plumber();
    await s.tick(T0);
    await s.tick(SLOT1);
    const res = await s.tick(SLOT2);
    expect(res.events.map((e) => e.type)).toEqual(["skipped"]);
    expect((await b.state())?.history[0]).toMatchObject({ slot: SLOT2.toISOString(), result: "Skipped", message: expect.stringContaining("was released already") });
    expect(await b.runs()).toHaveLength(1);

    const sha = await b.repo.commit({ "README.md": "new\n" }, "change");
    await s.tick(SLOT3);
    const runs = await b.runs();
    expect(runs).toHaveLength(2);
    expect(runs[1]?.metadata.annotations["plumber.dev/revision"]).toBe(sha);
  });

  it("lagged promotion: releases the newest revision the app had deployed at least olderThan before the slot", async () => {
    const b = await bed({ concurrency: "allow" });
    // Three commits, each with its own template: the template must be read at the chosen revision.
    const shaA = await b.repo.commit({ "tekton/release.yaml": pipelineRunTemplate([{ name: "generation", value: "a" }]) }, "a");
    const shaB = await b.repo.commit({ "tekton/release.yaml": pipelineRunTemplate([{ name: "generation", value: "b" }]) }, "b");
    const shaC = await b.repo.commit({ "tekton/release.yaml": pipelineRunTemplate([{ name: "generation", value: "c" }]) }, "c");
    const app = uniqueName("staging");
    const appStore = new StateStore(admin, b.stateNamespace);
    const rec = (revision: string, finishedAt: string, result: "Applied" | "Failed" = "Applied") => ({ revision, startedAt: finishedAt, finishedAt, result });
    await appStore.save({
      app,
      revision: shaC,
      inventory: [],
      history: [
        rec(shaC, "2026-11-21T01:30:00Z"), // 30m before SLOT1: too young
        rec(shaB, "2026-11-20T20:00:00Z", "Failed"), // failed: never counts
        rec(shaB, "2026-11-20T01:00:00Z"), // 25h before SLOT1: the one
        rec(shaA, "2026-11-19T01:00:00Z"),
      ],
    } as AppState);
    b.release.revision = { kind: "deployedTo", app, olderThanMs: 24 * 3600_000 };
    const s = await b.plumber({ appState: (name) => appStore.load(name) });
    await s.tick(T0);
    const r1 = await s.tick(SLOT1);
    expect(r1.events.map((e) => e.type)).toEqual(["fired"]);
    const [pr] = await b.runs();
    expect(pr?.metadata.annotations["plumber.dev/revision"]).toBe(shaB);
    expect(pr?.spec.params).toContainEqual({ name: "gitRevision", value: shaB });
    expect(pr?.spec.params).toContainEqual({ name: "generation", value: "b" });
    expect((await b.state())?.history[0]?.message).toBe(`deployed to ${app} at 2026-11-20T01:00:00Z`);
    expect(shaA).not.toBe(shaB);

    // Nothing old enough: recorded as skipped, with why.
    b.release.revision = { kind: "deployedTo", app, olderThanMs: 100 * 24 * 3600_000 };
    const res = await s.tick(SLOT2);
    expect(res.events[0]?.type).toBe("skipped");
    expect((await b.state())?.history[0]?.message).toMatch(/no revision deployed \(result Applied\) at or before/);
  });

  it("a restart between claim and creation does not double-fire", async () => {
    const b = await bed();
    // Plumber 1 claims the slot and dies before the run exists.
    const p1 = await b.plumber();
    await p1.tick(T0);
    p1.runs.create = async () => {
      throw new Error("killed");
    };
    await p1.tick(SLOT1);
    expect((await b.state())?.history[0]).toMatchObject({ slot: SLOT1.toISOString(), result: "Claimed", run: `${b.release.name}-202611210200` });
    expect(await b.runs()).toHaveLength(0);

    // Plumber 2 (a restart) finishes the claim: one run, recorded Running.
    const p2 = await b.plumber();
    await p2.tick(after(SLOT1, 30_000));
    expect((await b.runs()).map((r) => r.metadata.name)).toEqual([`${b.release.name}-202611210200`]);
    expect((await b.state())?.history[0]).toMatchObject({ result: "Running" });

    // Plumber 3 creates the run and dies before recording it; plumber 4 finds it (AlreadyExists).
    const p3 = await b.plumber();
    const create = p3.runs.create.bind(p3.runs);
    p3.runs.create = async (obj) => {
      await create(obj);
      throw new Error("killed after create");
    };
    await setStatus(prPath(b, `${b.release.name}-202611210200`), succeeded("True", "Succeeded", "ok"));
    await p3.tick(SLOT2);
    expect((await b.state())?.history[0]).toMatchObject({ slot: SLOT2.toISOString(), result: "Claimed" });
    const events: ReleaseEvent[] = [];
    const p4 = await b.plumber({ events });
    await p4.tick(after(SLOT2, 10_000));
    expect((await b.runs()).map((r) => r.metadata.name)).toEqual([`${b.release.name}-202611210200`, `${b.release.name}-202611220200`]);
    expect((await b.state())?.history[0]).toMatchObject({ slot: SLOT2.toISOString(), result: "Running" });
    expect(events.map((e) => [e.type, e.message])).toEqual([["fired", "the run existed already (created before a restart)"]]);
  });

  it("two schedulers (two KubeClients, same cluster) fire each slot once", async () => {
    const b = await bed({ concurrency: "allow" });
    const events: ReleaseEvent[] = [];
    const [p1, p2] = await Promise.all([b.plumber({ events }), b.plumber({ events })]);
    await Promise.all([p1.tick(T0), p2.tick(T0)]);
    for (const slot of [SLOT1, SLOT2, SLOT3]) {
      await Promise.all([p1.tick(after(slot, 1_000)), p2.tick(after(slot, 1_500))]);
    }
    expect((await b.runs()).map((r) => r.metadata.name)).toEqual(
      ["202611210200", "202611220200", "202611230200"].map((s) => `${b.release.name}-${s}`),
    );
    expect(events.filter((e) => e.type === "fired")).toHaveLength(3);
    const st = await b.state();
    expect(st?.history.map((h) => h.slot)).toEqual([SLOT3, SLOT2, SLOT1].map((d) => d.toISOString()));
  });

  it("after downtime, fires once for the slots missed inside the catch-up window and records the older ones as missed", async () => {
    const b = await bed({ schedule: "0 * * * *", catchUpMs: 30 * 60_000 });
    const s = await b.plumber();
    await s.tick(new Date("2026-11-21T09:30:00Z"));
    await s.tick(new Date("2026-11-21T10:00:00Z"));
    await setStatus(prPath(b, `${b.release.name}-202611211000`), succeeded("True", "Succeeded", "ok"));
    // Down from 10:00 to 15:20.
    const res = await s.tick(new Date("2026-11-21T15:20:00Z"));
    expect(res.events.map((e) => e.type).sort()).toEqual(["finished", "fired", "missed"]);
    expect((await b.runs()).map((r) => r.metadata.name)).toEqual([`${b.release.name}-202611211000`, `${b.release.name}-202611211500`]);
    const st = await b.state();
    expect(st?.history.slice(0, 2)).toMatchObject([
      { slot: "2026-11-21T15:00:00.000Z", result: "Running" },
      { slot: "2026-11-21T14:00:00.000Z", firstSlot: "2026-11-21T11:00:00.000Z", result: "Missed", count: 4 },
    ]);
    // Down again past the window: nothing fires, the slot is recorded as missed.
    await setStatus(prPath(b, `${b.release.name}-202611211500`), succeeded("True", "Succeeded", "ok"));
    await s.tick(new Date("2026-11-21T15:30:00Z"));
    const late = await s.tick(new Date("2026-11-21T17:45:00Z"));
    expect(late.events.map((e) => e.type)).toEqual(["missed"]);
    expect(await b.runs()).toHaveLength(2);
    expect((await b.state())?.history[0]).toMatchObject({ slot: "2026-11-21T17:00:00.000Z", result: "Missed", count: 2 });
  });

  it("release --now fires at once, recorded as manual; forbid refuses while a run is going", async () => {
    const b = await bed();
    const s = await b.plumber();
    const rec = await s.fireNow(new Date("2026-11-21T12:34:56Z"));
    expect(rec).toMatchObject({ trigger: "manual", result: "Running", run: `${b.release.name}-manual-20261121123456` });
    const [pr] = await b.runs();
    expect(pr?.metadata.labels["plumber.dev/release-trigger"]).toBe("manual");
    expect(pr?.spec.params[1]?.value).toMatch(/^v20261121-/);
    await expect(s.fireNow(new Date("2026-11-21T12:40:00Z"))).rejects.toThrow(/still running \(concurrency: forbid\)/);
  });
});

describe("scheduled releases through the config file", () => {
  it("loads releases[] and buildRuntime connects them", async () => {
    const { loadConfig } = await import("../../src/config/load.js");
    const { buildRuntime } = await import("../../src/reconcile/runtime.js");
    const repo = await newTestRepo("relcfg");
    await repo.commit({ "tekton/release.yaml": pipelineRunTemplate(), "app/cm.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: {} }) });
    const dir = await mkdtemp(join(env.scratchDir, "relcfg-"));
    await writeFile(join(dir, "token"), env.gitToken);
    const namespace = uniqueName("rel-ns");
    await writeFile(
      join(dir, "plumber.yaml"),
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1m", auth: { tokenFile: "token" } }],
        apps: [{ name: "stage", repo: "plumbing", branch: "main", path: "app", cluster: "local", namespace }],
        releases: [
          {
            name: "nightly",
            schedule: "0 2 * * *",
            timezone: "Europe/Berlin",
            repo: "plumbing",
            branch: "main",
            cluster: "local",
            namespace,
            template: { path: "tekton/release.yaml" },
            params: { versionTag: "$(plumber.versionTag)", bucket: "gs://b" },
            revision: { deployedTo: "stage", olderThan: "24h" },
          },
        ],
        state: { namespace: uniqueName("state") },
      }),
    );
    const rt = await buildRuntime(await loadConfig(join(dir, "plumber.yaml")), { log: silentLogger(), cacheDir: join(dir, "cache") });
    closers.push(() => rt.close());
    expect(rt.releases.map((r) => r.release.name)).toEqual(["nightly"]);
    const { upcoming } = await rt.releases[0]!.status(new Date("2026-11-21T12:00:00Z"));
    expect(upcoming[0]?.toISOString()).toBe("2026-11-22T01:00:00.000Z");
    // The app has never deployed: the slot is skipped with the reason.
    const res = await rt.releases[0]!.tick(new Date("2026-11-21T12:00:00Z"));
    expect(res.events).toEqual([]);
    const fired = await rt.releases[0]!.tick(new Date("2026-11-22T01:00:10Z"));
    expect(fired.events.map((e) => [e.type, e.message])).toEqual([["skipped", "app stage has no state in its cluster yet (never deployed)"]]);

    // The CLI: `plumber releases` and `plumber release NAME --now`.
    const { releasesCommand, releaseNowCommand } = await import("../../src/cli/releases.js");
    const config = await loadConfig(join(dir, "plumber.yaml"));
    const ctx = { config, log: silentLogger(), runtime: () => buildRuntime(config, { log: silentLogger(), cacheDir: join(dir, "cache") }) };
    const lines: string[] = [];
    expect(await releasesCommand(ctx, (l) => lines.push(l), false)).toBe(0);
    const text = lines.join("\n");
    expect(text).toContain('nightly: "0 2 * * *" Europe/Berlin, revision deployed to stage at least 24h before the slot');
    expect(text).toMatch(/next {2}\d{4}-\d\d-\d\d 02:00 (CET|CEST|GMT\+[12]) +\d{4}-\d\d-\d\dT0[01]:00:00Z/);
    expect(text).toContain("2026-11-22T01:00:00Z  scheduled  Skipped");
    const json: string[] = [];
    await releasesCommand(ctx, (l) => json.push(l), true);
    expect(JSON.parse(json.join("\n"))[0]).toMatchObject({ name: "nightly", timezone: "Europe/Berlin", history: [{ result: "Skipped" }] });
    const now: string[] = [];
    await expect(releaseNowCommand(ctx, (l) => now.push(l), "nightly")).rejects.toThrow("release nightly: app stage has no state in its cluster yet (never deployed)");
    expect(await releaseNowCommand(ctx, (l) => now.push(l), "nope")).toBe(1);
    expect(now).toEqual(["no release named nope in " + config.file + " (known: nightly)"]);
  });
});
