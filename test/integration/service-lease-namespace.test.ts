// A fresh cluster: the Lease's namespace (by default state.namespace) does not exist yet, and
// nothing else creates it before a replica leads. The elector creates it when the Lease's POST
// answers 404, so a replica leads, and the daemon then applies.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { Daemon } from "../../src/service/daemon.js";
import { LeaderElector } from "../../src/service/leader.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const TIMINGS = { leaseDurationMs: 4_000, renewDeadlineMs: 2_500, retryPeriodMs: 500 };

describe("leader election on a fresh cluster", () => {
  const env = testEnv();
  let kube: KubeClient;

  beforeAll(async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
  });
  afterAll(() => kube?.close());

  it("creates the Lease's namespace when it is missing, and leads", async () => {
    const ns = uniqueName("lease-fresh");
    expect(await kube.getOptional(`/api/v1/namespaces/${ns}`)).toBeUndefined();
    const elector = new LeaderElector({ ...TIMINGS, client: kube, namespace: ns, name: "plumber", identity: "replica-a", log: silentLogger() });
    expect(await elector.tryAcquireOrRenew()).toBe(true);
    expect(elector.isLeader()).toBe(false); // leading starts in run(); the Lease is held
    expect(await kube.getOptional(`/api/v1/namespaces/${ns}`)).toBeTruthy();
    const lease = await kube.getOptional<{ spec: { holderIdentity: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/plumber`);
    expect(lease?.spec.holderIdentity).toBe("replica-a");
    // A second replica finds it held, and creates nothing.
    const other = new LeaderElector({ ...TIMINGS, client: kube, namespace: ns, name: "plumber", identity: "replica-b", log: silentLogger() });
    expect(await other.tryAcquireOrRenew()).toBe(false);
  });

  it("plumber run --leader-elect with a state namespace that does not exist yet leads and applies", async () => {
    const stateNs = uniqueName("le-fresh-state");
    const appNs = uniqueName("le-fresh-apps");
    const app = uniqueName("le-fresh").slice(0, 30).replace(/-+$/, "");
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: appNs } }) });
    const repo = await newTestRepo("le-fresh");
    await repo.commit({ "a.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { v: "1" } }) }, "initial");
    const dir = await tempDir("le-fresh");
    await writeFile(join(dir, "token"), env.gitToken);
    const configFile = join(dir, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: appNs }],
        state: { namespace: stateNs },
      }),
    );
    const stop = new AbortController();
    const daemon = new Daemon({
      configPath: configFile,
      config: await loadConfig(configFile),
      log: silentLogger(),
      cacheDir: join(dir, "cache"),
      metricsAddr: "",
      // No lease namespace given: state.namespace, as in the README.
      leaderElection: { enabled: true, kubeconfig: env.kubeconfigPath, ...TIMINGS },
      reloadPollMs: 60_000,
      stop: stop.signal,
    });
    const prevPodNs = process.env.POD_NAMESPACE;
    delete process.env.POD_NAMESPACE;
    const running = daemon.run();
    try {
      const head = await repo.head("main");
      const t = Date.now();
      for (;;) {
        const st = await kube.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
        if (st?.data?.revision === head) break;
        if (Date.now() - t > 60_000) throw new Error("the app was never applied: no replica leads");
        await new Promise((r) => setTimeout(r, 200));
      }
      const lease = await kube.getOptional<{ spec: { holderIdentity: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${stateNs}/leases/plumber`);
      expect(lease?.spec.holderIdentity).toBe(daemon.identity);
    } finally {
      stop.abort();
      expect(await running).toBe(0);
      if (prevPodNs !== undefined) process.env.POD_NAMESPACE = prevPodNs;
    }
  });
});
