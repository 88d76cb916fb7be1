// A long source outage against `plumber run` as a real process: the git server (behind a fault
// proxy) hangs, then sends garbage, then answers 500. The failure is recorded once, with since
// when, the error and the last good listing; nothing more is written however long it lasts and
// however the error changes; `plumber status` from another process shows it; a plumber SIGKILLed
// and restarted mid-outage keeps the outage's start and writes nothing (not even an Event); the
// recovery is recorded once and the commit made during the outage is applied.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import type { TestRepo } from "../bed/testrepo.js";
import { startFaultProxy, type FaultProxy } from "../bed/faultproxy.js";
import { PlumberProcess, plumberMain } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const cm = (v: string) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { v } });

interface StateCm {
  metadata: { resourceVersion: string };
  data?: Record<string, string>;
}

describe("a long source outage (plumber run)", () => {
  const env = testEnv();
  const app = uniqueName("outage").slice(0, 30).replace(/-+$/, "");
  const appNs = uniqueName("outage-ns");
  const stateNs = uniqueName("outage-state");
  let kube: KubeClient;
  let repo: TestRepo;
  let proxy: FaultProxy;
  let dir: string;
  let configFile: string;
  const procs: PlumberProcess[] = [];
  const state = () => kube.getOptional<StateCm>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
  const start = (name: string) => {
    const p = PlumberProcess.start(["--config", configFile, "--cache-dir", join(dir, `cache-${name}`), "run", "--metrics-addr", "127.0.0.1:0", "--no-leader-elect"], { KUBECONFIG: env.kubeconfigPath });
    procs.push(p);
    return p;
  };
  const gitFailures = async (p: PlumberProcess) => (await p.scrape()).value("plumber_git_request_failures_total", { repo: "plumbing" }) ?? 0;
  const writes = async (p: PlumberProcess) => (await p.scrape()).value("plumber_kube_api_writes_total") ?? 0;
  const status = () =>
    new Promise<Record<string, string>>((resolve, reject) => {
      execFile(process.execPath, [plumberMain(), "--config", configFile, "--cache-dir", join(dir, "cache-status"), "--log-level", "error", "status", "--json"], { env: { ...process.env, KUBECONFIG: env.kubeconfigPath }, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`plumber status: ${err.message}\n${stderr}`));
        else resolve((JSON.parse(stdout) as Record<string, string>[])[0] as Record<string, string>);
      });
    });

  beforeAll(async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: appNs } }) });
    repo = await newTestRepo("outage");
    await repo.commit({ "a.yaml": cm("1") }, "initial");
    proxy = await startFaultProxy(env.gitBaseUrl);
    dir = await tempDir("outage");
    await writeFile(join(dir, "token"), env.gitToken);
    configFile = join(dir, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: `${proxy.url}/${repo.name}.git`, interval: "1s", timeout: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: appNs }],
        state: { namespace: stateNs },
      }),
    );
  });

  afterAll(async () => {
    proxy.mode = "none";
    await Promise.all(procs.map((p) => p.kill()));
    await proxy?.close();
    kube?.close();
  });

  it("is recorded once, survives a restart mid-outage without a write, and clears once", async () => {
    const rev1 = await repo.head("main");
    const a = start("a");
    await until("applied", async () => (await state())?.data?.revision === rev1);

    proxy.mode = "hang";
    const rec = await until("failure recorded", async () => {
      const s = await state();
      return s?.data?.sourceFailingSince ? s : undefined;
    });
    const since = rec.data?.sourceFailingSince as string;
    expect(rec.data?.sourceError).toBeTruthy();
    expect(JSON.parse(rec.data?.sourceLastGoodHeads ?? "{}")).toEqual({ main: rev1 });
    const rev2 = await repo.commit({ "a.yaml": cm("2") }, "during the outage");

    // The outage goes on, and its error changes: still no write.
    const w0 = await writes(a);
    for (const mode of ["garbage", "500"] as const) {
      proxy.mode = mode;
      const f = proxy.faulted;
      // Garbage comes with a 200, so it is not an HTTP failure: count the faulted requests instead.
      await until(`more failed listings (${mode})`, async () => proxy.faulted >= f + 2 && (await a.scrape()).value("plumber_source_failing", { repo: "plumbing" }) === 1);
    }
    // Events are writes too: the SourceFailing Event went out at the transition, none since.
    expect(await writes(a)).toBe(w0);
    expect((await state())?.metadata.resourceVersion).toBe(rec.metadata.resourceVersion);
    expect((await a.scrape()).value("plumber_source_failing", { repo: "plumbing" })).toBe(1);

    // From another process: status reads it from the cluster.
    const row = await status();
    expect(row.source).toBe(`failing since ${since}`);
    expect(row.message).toContain(`source failing since ${since}`);
    expect(row.revision).toBe(rev1.slice(0, 12));

    // SIGKILL mid-outage; the next plumber keeps the outage's start and writes nothing at all.
    await a.kill();
    const b = start("b");
    await until("b polled and failed", async () => b.running && (await gitFailures(b).catch(() => 0)) >= 2);
    const mb = await b.scrape();
    expect(mb.value("plumber_source_failing_since_timestamp_seconds", { repo: "plumbing" })).toBeCloseTo(Date.parse(since) / 1000, 3);
    expect(await writes(b)).toBe(0);
    expect((await state())?.metadata.resourceVersion).toBe(rec.metadata.resourceVersion);

    // Recovery: recorded once, the commit made meanwhile applied.
    proxy.mode = "none";
    const done = await until("recovered and applied", async () => {
      const s = await state();
      return s?.data?.revision === rev2 && !s.data.sourceFailingSince && s;
    });
    for (const k of ["sourceError", "sourceLastGoodAt", "sourceLastGoodHeads"]) expect(done.data?.[k]).toBeUndefined();
    expect((await status()).source).toBe("ok");
    const events = await kube.request<{ items: Array<{ reason: string; note: string; regarding: { name: string } }> }>({ method: "GET", path: `/apis/events.k8s.io/v1/namespaces/${stateNs}/events` });
    const mine = events.body.items.filter((e) => e.regarding.name === stateObjectName(app));
    expect(mine.filter((e) => e.reason === "SourceFailing")).toHaveLength(1);
    expect(mine.filter((e) => e.reason === "SourceRecovered").map((e) => e.note)).toEqual([`repo plumbing: listing refs works again (failing since ${since})`]);
    console.log(`outage: failing since ${since}, ${proxy.faulted} faulted git requests (hang, garbage, 500), one record write at each end`);
  });
});
