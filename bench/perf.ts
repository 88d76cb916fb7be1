// Commit → applied latency of one big app, this checkout against another side by side
// (BENCH_ONLY=perf): one control plane, one git server, one repo; each side runs its own
// `plumber run` loop in-process over its own copy of the app, the sides taking turns in blocks of
// commits (who goes first alternates), so both meet the same machine. Ratios, never one number.
//   BENCH_PERF_BASE=/path/to/other/checkout (built: its dist/ is loaded), BENCH_PERF_OBJECTS=10000,
//   BENCH_PERF_BLOCKS=4, BENCH_PERF_COMMITS=4 (per block).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { plumbingFiles } from "./core.js";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { installCrds, startControlPlane } from "../src/local/controlplane.js";
import { startGitServerProcess } from "./gitserver-process.js";
import { silentLogger } from "../src/log.js";
import { sleep } from "../src/util/pool.js";
import { TestRepo } from "../test/bed/testrepo.js";
import * as thisConfig from "../src/config/load.js";
import * as thisPoller from "../src/reconcile/poller.js";
import * as thisRuntime from "../src/reconcile/runtime.js";

type Row = (k: string, v: string) => void;
interface Modules {
  config: typeof thisConfig;
  runtime: typeof thisRuntime;
  poller: typeof thisPoller;
}
interface Side {
  name: string;
  namespace: string;
  rt: thisRuntime.Runtime;
  poller: thisPoller.RepoPoller;
  lat: number[];
}

const OBJECTS = Number(process.env.BENCH_PERF_OBJECTS ?? 10000);
const BLOCKS = Number(process.env.BENCH_PERF_BLOCKS ?? 4);
const COMMITS = Number(process.env.BENCH_PERF_COMMITS ?? 4);
const INTERVAL_MS = 1000;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/** The other checkout's modules, as this one types them (the surface used here is the same). */
async function modulesOf(root: string): Promise<Modules> {
  const load = async <T>(p: string) => (await import(join(root, "dist", "src", p))) as T;
  return { config: await load("config/load.js"), runtime: await load("reconcile/runtime.js"), poller: await load("reconcile/poller.js") };
}

export async function benchPerf(row: Row): Promise<void> {
  const base = process.env.BENCH_PERF_BASE;
  // Alone it would repeat the core section's latency rows: it is here to compare.
  if (!base) {
    row("perf: this / base side by side", "skipped (set BENCH_PERF_BASE to a built checkout)");
    return;
  }
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-perf-"));
  const cp = await startControlPlane();
  await installCrds(cp.kubeconfigPath, undefined, { binDir: cp.binDir });
  const git = await startGitServerProcess({ root: join(work, "git"), auth: { token: "bench-token" } });
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  const sides: Side[] = [];
  try {
    await writeFile(join(work, "token"), "bench-token");
    const repo = await TestRepo.create(join(work, "git"), "bench");
    await repo.commit(plumbingFiles(OBJECTS, "app"), "objects");
    const variants: [string, Modules][] = [
      ["this", { config: thisConfig, runtime: thisRuntime, poller: thisPoller }],
      ["base", await modulesOf(base)],
    ];
    for (const [name, m] of variants) {
      const namespace = `perf-${name}`;
      await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }) });
      const file = join(work, `${name}.yaml`);
      await writeFile(
        file,
        stringify({
          clusters: [{ name: "local", kubeconfig: cp.kubeconfigPath }],
          repos: [{ name: "bench", url: git.url("bench"), interval: `${INTERVAL_MS / 1000}s`, auth: { tokenFile: "token" } }],
          apps: [{ name: namespace, repo: "bench", branch: "main", path: "app", cluster: "local", namespace }],
          state: { namespace: "plumber-bench-perf" },
        }),
      );
      const rt = await m.runtime.buildRuntime(await m.config.loadConfig(file), { log: silentLogger(), cacheDir: join(work, `cache-${name}`) });
      const poller = m.poller.repoPoller(rt, "bench", silentLogger());
      const first = await poller.cycle();
      if (first.apps[0]?.result.kind !== "applied") throw new Error(`${name}: first apply ${JSON.stringify(first.apps[0]?.result).slice(0, 300)}`);
      sides.push({ name, namespace, rt, poller, lat: [] });
    }
    let k = 0;
    const commitAndWait = async (s: Side): Promise<number> => {
      const value = `v${k++}`;
      await repo.commit({ "app/latency.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "latency" }, data: { value } }) }, `latency ${value}`);
      const t = performance.now();
      for (;;) {
        const cm = await kube.getOptional<{ data?: { value?: string } }>(`/api/v1/namespaces/${s.namespace}/configmaps/latency`);
        if (cm?.data?.value === value) return performance.now() - t;
        if (performance.now() - t > 60_000) throw new Error(`${s.name}: commit not applied within 60 s`);
        await sleep(20);
      }
    };
    for (let b = 0; b < BLOCKS; b++) {
      for (const s of b % 2 ? [...sides].reverse() : sides) {
        const stop = new AbortController();
        const loop = s.poller.run(stop.signal);
        // The other side's commits are news to this one: caught up first, not measured.
        await commitAndWait(s);
        await sleep(INTERVAL_MS * 1.5);
        for (let i = 0; i < COMMITS; i++) {
          s.lat.push(await commitAndWait(s));
          // Uniform over more than one poll period: the commit's phase relative to the poll is random.
          await sleep(Math.random() * INTERVAL_MS * 1.5);
        }
        stop.abort();
        await loop;
      }
    }
    const sec = (ms: number) => (ms / 1000).toFixed(2);
    for (const s of sides) row(`perf: commit → applied, ${OBJECTS} objects, 1 s interval, ${s.name} (${s.lat.length} commits): p50 / p95`, `${sec(pct(s.lat, 50))} s / ${sec(pct(s.lat, 95))} s`);
    const [mine, other] = sides;
    if (mine && other) row(`perf: commit → applied, ${OBJECTS} objects: this / base, p50 and p95`, `${(pct(mine.lat, 50) / pct(other.lat, 50)).toFixed(2)} / ${(pct(mine.lat, 95) / pct(other.lat, 95)).toFixed(2)}`);
  } finally {
    for (const s of sides) s.rt.close();
    kube.close();
    await git.stop();
    await cp.stop();
    await rm(work, { recursive: true, force: true });
  }
}
