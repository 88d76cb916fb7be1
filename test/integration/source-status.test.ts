// A failing source is visible: with the real git server answering 500 (through a fault proxy in
// front of it, test/bed/faultproxy.ts), the app's state in the cluster records since when, the
// error and the last good listing — written once when the source fails and once when it
// recovers, never per poll — and `plumber status` (a fresh runtime, as on another machine) shows
// it; the daemon says it in /metrics and Events.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { statusCommand } from "../../src/cli/commands.js";
import type { CommandContext } from "../../src/cli/context.js";
import { loadConfig } from "../../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { repoPoller, type RepoPoller } from "../../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../../src/reconcile/runtime.js";
import type { TestRepo } from "../bed/testrepo.js";
import { Daemon } from "../../src/service/daemon.js";
import { startFaultProxy, type FaultProxy } from "../bed/faultproxy.js";
import { Metrics } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const cm = (name: string, v: string) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { v } });

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface StateCm {
  metadata: { resourceVersion: string };
  data?: Record<string, string>;
}

describe("a failing source in status, metrics and Events", () => {
  const env = testEnv();
  let kube: KubeClient;
  let repo: TestRepo;
  let proxy: FaultProxy;
  let dir: string;

  const setup = async (prefix: string) => {
    const app = uniqueName(prefix).slice(0, 30).replace(/-+$/, "");
    const ns = uniqueName(`${prefix}-ns`);
    const stateNs = uniqueName(`${prefix}-state`);
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) });
    const configFile = join(dir, `${app}.yaml`);
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: `${proxy.url}/${repo.name}.git`, interval: "1s", timeout: "5s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: ns }],
        state: { namespace: stateNs },
      }),
    );
    const state = () => kube.getOptional<StateCm>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
    return { app, ns, stateNs, configFile, state };
  };

  beforeAll(async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    repo = await newTestRepo("src");
    await repo.commit({ "a.yaml": cm("a", "1") }, "initial");
    proxy = await startFaultProxy(env.gitBaseUrl);
    dir = await tempDir("src");
    await writeFile(join(dir, "token"), env.gitToken);
  });

  afterAll(async () => {
    proxy.mode = "none";
    await proxy?.close();
    kube?.close();
  });

  it("records the failure once, status shows it from a fresh runtime, and recovery clears it once", async () => {
    const s = await setup("src");
    const config = await loadConfig(s.configFile);
    const rt: Runtime = await buildRuntime(config, { log: silentLogger(), cacheDir: join(dir, "cache-a") });
    const poller: RepoPoller = repoPoller(rt, "plumbing", silentLogger());
    const writes = () => (rt.clusters.get("local") as NonNullable<ReturnType<typeof rt.clusters.get>>).client.stats.writes;
    const status = async (): Promise<Record<string, string>> => {
      const lines: string[] = [];
      const ctx: CommandContext = { config, log: silentLogger(), runtime: (only) => buildRuntime(config, { log: silentLogger(), cacheDir: join(dir, "cache-status"), only: only?.length ? only : undefined }) };
      await statusCommand(ctx, (l) => lines.push(l), [], true);
      return (JSON.parse(lines.join("\n")) as Record<string, string>[])[0] as Record<string, string>;
    };
    try {
      const head = await repo.head("main");
      const first = await poller.cycle();
      expect(first.apps[0]?.result.kind).toBe("applied");
      const ok = await s.state();
      expect(ok?.data?.revision).toBe(head);
      expect(ok?.data?.sourceFailingSince).toBeUndefined();
      expect((await status()).source).toBe("ok");

      proxy.mode = "500";
      const faulted0 = proxy.faulted;
      const before = Date.now();
      const failed = await poller.cycle();
      expect(failed.error).toMatch(/500/);
      const rec = (await s.state()) as StateCm;
      expect(rec.data?.revision).toBe(head);
      expect(rec.data?.lastResult).toBe("Applied");
      expect(Date.parse(rec.data?.sourceFailingSince ?? "")).toBeGreaterThanOrEqual(before - 1000);
      expect(rec.data?.sourceError).toMatch(/500/);
      expect(Date.parse(rec.data?.sourceLastGoodAt ?? "")).toBeLessThanOrEqual(Date.parse(rec.data?.sourceFailingSince ?? ""));
      expect(JSON.parse(rec.data?.sourceLastGoodHeads ?? "{}")).toEqual({ main: head });
      // The inventory and record written by the app stay as they were.
      expect(rec.data?.history).toBe(ok?.data?.history);

      // Failing polls write nothing more: same resourceVersion, no write requests.
      const w0 = writes();
      for (let i = 0; i < 5; i++) expect((await poller.cycle()).error).toMatch(/500/);
      expect(writes()).toBe(w0);
      expect((await s.state())?.metadata.resourceVersion).toBe(rec.metadata.resourceVersion);
      expect(proxy.faulted - faulted0).toBeGreaterThanOrEqual(6); // this test's six failed listings, whatever ran before

      // `plumber status` with a runtime of its own reads it from the cluster.
      const row = await status();
      expect(row).toMatchObject({ phase: "Ready", result: "Applied", source: `failing since ${rec.data?.sourceFailingSince}` });
      expect(row.message).toContain(`source failing since ${rec.data?.sourceFailingSince}`);
      expect(row.message).toContain(`main=${head.slice(0, 12)}`);
      expect(row.sourceError).toMatch(/500/);
      expect(row.sourceLastGoodHeads).toBe(`main=${head}`);

      // A commit during the outage is picked up once the source works again.
      const rev2 = await repo.commit({ "a.yaml": cm("a", "2") }, "bump");
      proxy.mode = "none";
      const back = await poller.cycle();
      expect(back.error).toBeUndefined();
      expect(back.apps[0]?.result.kind).toBe("applied");
      const cleared = (await s.state()) as StateCm;
      expect(cleared.data?.revision).toBe(rev2);
      for (const k of ["sourceFailingSince", "sourceError", "sourceLastGoodAt", "sourceLastGoodHeads"]) expect(cleared.data?.[k]).toBeUndefined();
      expect((await status()).source).toBe("ok");

      // Steady again: zero writes.
      const w1 = writes();
      for (let i = 0; i < 3; i++) expect((await poller.cycle()).apps[0]?.result.kind).toBe("unchanged");
      expect(writes()).toBe(w1);
      expect((await s.state())?.metadata.resourceVersion).toBe(cleared.metadata.resourceVersion);
    } finally {
      proxy.mode = "none";
      rt.close();
    }
  });

  it("the daemon: plumber_source_failing and SourceFailing / SourceRecovered Events", async () => {
    const s = await setup("srcd");
    const stop = new AbortController();
    const daemon = new Daemon({
      configPath: s.configFile,
      config: await loadConfig(s.configFile),
      log: silentLogger(),
      cacheDir: join(dir, "cache-d"),
      metricsAddr: "127.0.0.1:0",
      leaderElection: { enabled: false },
      reloadPollMs: 60_000,
      stop: stop.signal,
    });
    const running = daemon.run();
    const scrape = async () => new Metrics(await (await fetch(`http://${daemon.address}/metrics`)).text());
    const events = async () =>
      (
        await kube.request<{ items: Array<{ reason: string; type: string; note: string; regarding: { name: string } }> }>({ method: "GET", path: `/apis/events.k8s.io/v1/namespaces/${s.stateNs}/events` })
      ).body.items.filter((e) => e.regarding.name === stateObjectName(s.app));
    try {
      await until("applied", async () => (await s.state())?.data?.revision === (await repo.head("main")));
      await until("source ok in metrics", async () => daemon.address && (await scrape()).value("plumber_source_failing", { repo: "plumbing" }) === 0);
      expect((await scrape()).value("plumber_source_last_listing_timestamp_seconds", { repo: "plumbing" })).toBeGreaterThan(0);

      proxy.mode = "500";
      const m = await until("failing in metrics", async () => {
        const x = await scrape();
        return x.value("plumber_source_failing", { repo: "plumbing" }) === 1 && x;
      });
      const since = m.value("plumber_source_failing_since_timestamp_seconds", { repo: "plumbing" }) ?? 0;
      const rec = await until("recorded", async () => (await s.state())?.data?.sourceFailingSince);
      expect(since).toBeCloseTo(Date.parse(rec) / 1000, 3);
      const failing = await until("SourceFailing event", async () => (await events()).find((e) => e.reason === "SourceFailing"));
      expect(failing.type).toBe("Warning");
      expect(failing.note).toMatch(new RegExp(`^repo plumbing: source failing since ${rec.replace(/[.]/g, "\\.")}: .*500.*; last good listing .* \\(main=[0-9a-f]{12}\\); the cluster keeps its current revision$`));

      proxy.mode = "none";
      await until("recovered in metrics", async () => (await scrape()).value("plumber_source_failing", { repo: "plumbing" }) === 0);
      const recovered = await until("SourceRecovered event", async () => (await events()).find((e) => e.reason === "SourceRecovered"));
      expect(recovered.type).toBe("Normal");
      expect(recovered.note).toBe(`repo plumbing: listing refs works again (failing since ${rec})`);
      expect((await scrape()).value("plumber_source_failing_since_timestamp_seconds", { repo: "plumbing" })).toBeUndefined();
      expect((await s.state())?.data?.sourceFailingSince).toBeUndefined();
    } finally {
      proxy.mode = "none";
      stop.abort();
      expect(await running).toBe(0);
    }
  });
});
