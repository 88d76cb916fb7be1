// Bench rows of helper "service": the cost of a contested field and of a failing source, with the
// daemon in-process on its own control plane and git server (cleaned up after).
//   contested: a competitor re-takes a ConfigMap field (as manager "hpa-like") whenever plumber
//     has it, for 30 s at a 1 s interval; counted: plumber's writes of that object (the
//     issue measured 21 in 30 s before the backoff).
//   failing source: the git server answers 500 for 30 s; counted: writes to the cluster.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { silentLogger } from "../src/log.js";
import { startControlPlane } from "../src/local/controlplane.js";
import { startGitServer } from "../src/local/gitserver.js";
import { TestRepo } from "../test/bed/testrepo.js";
import { Daemon } from "../src/service/daemon.js";
import { startFaultProxy } from "../test/bed/faultproxy.js";
import { Metrics } from "../test/bed/plumber.js";
import { stateObjectName } from "../src/state/store.js";
import { sleep } from "../src/util/pool.js";

const WINDOW_MS = Number(process.env.BENCH_CONTEST_MS ?? 30_000);

interface Cm {
  metadata: { resourceVersion: string; managedFields?: Array<{ manager: string; fieldsV1?: { "f:data"?: Record<string, unknown> } }> };
  data?: Record<string, string>;
}

const ownsV = (o: Cm, m: string) => (o.metadata.managedFields ?? []).some((e) => e.manager === m && e.fieldsV1?.["f:data"]?.["f:v"] !== undefined);

export async function benchService(row: (k: string, v: string) => void): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-service-"));
  const cp = await startControlPlane();
  const token = "bench-token";
  const git = await startGitServer({ root: join(work, "git"), auth: { token } });
  const proxy = await startFaultProxy(git.baseUrl);
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  try {
    const ns = "bench-contest";
    const stateNs = "bench-plumber";
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) });
    const repo = await TestRepo.create(join(work, "git"), "plumbing");
    await repo.commit({ "a.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { v: "git" } }) }, "initial");
    await writeFile(join(work, "token"), token);
    const configFile = join(work, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: cp.kubeconfigPath }],
        repos: [{ name: "plumbing", url: `${proxy.url}/plumbing.git`, interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: "bench", repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: ns }],
        state: { namespace: stateNs },
      }),
    );
    const stop = new AbortController();
    const daemon = new Daemon({ configPath: configFile, config: await loadConfig(configFile), log: silentLogger(), cacheDir: join(work, "cache"), metricsAddr: "127.0.0.1:0", leaderElection: { enabled: false }, reloadPollMs: 60_000, stop: stop.signal });
    const running = daemon.run();
    const scrape = async () => new Metrics(await (await fetch(`http://${daemon.address}/metrics`)).text());
    const path = `/api/v1/namespaces/${ns}/configmaps/a`;
    try {
      for (;;) {
        const st = await kube.getOptional<Cm>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName("bench")}`);
        if (st?.data?.revision) break;
        await sleep(200);
      }
      // The contest: an HPA-like controller reacting within 250 ms whenever plumber has the field.
      let plumberWrites = 0;
      const until = Date.now() + WINDOW_MS;
      let lastRv = "";
      while (Date.now() < until) {
        const live = (await kube.getOptional<Cm>(path)) as Cm;
        if (ownsV(live, "plumber")) {
          if (live.metadata.resourceVersion !== lastRv) plumberWrites++;
          const res = await kube.request<Cm>({ method: "PUT", path, query: { fieldManager: "hpa-like" }, body: JSON.stringify({ ...live, data: { ...live.data, v: `hpa-${Date.now()}` } }) });
          lastRv = res.body.metadata.resourceVersion;
        }
        await sleep(250);
      }
      const m = await scrape();
      // The first take-back meets plumber's apply of the revision, which is not a repair.
      row(`contested field, ${WINDOW_MS / 1000} s at a 1 s interval: plumber writes of the object`, `${Math.max(0, plumberWrites - 1)} (without backoff: one per interval)`);
      row("contested field: repairs put off by the backoff", String(m.value("plumber_drift_repairs_deferred_total", { app: "bench" }) ?? 0));

      // A failing source: writes while the git server answers 500.
      const before = (await scrape()).value("plumber_kube_api_writes_total") ?? 0;
      proxy.mode = "500";
      await sleep(WINDOW_MS);
      const during = ((await scrape()).value("plumber_kube_api_writes_total") ?? 0) - before;
      proxy.mode = "none";
      row(`git answering 500 for ${WINDOW_MS / 1000} s: cluster writes (status record and Event)`, `${during} (${proxy.faulted} failed git requests)`);
    } finally {
      proxy.mode = "none";
      stop.abort();
      await running;
    }
  } finally {
    kube.close();
    await proxy.close();
    await git.stop();
    await cp.stop();
    await rm(work, { recursive: true, force: true });
  }
}
