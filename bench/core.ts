// The core rows of `npm run bench`: plumber against the local control plane and git server, side
// by side with kubectl where there is something to compare. Never a timed test.
//   first apply at 1k and 5k objects: plumber and `kubectl apply --server-side`, median of
//     BENCH_ROUNDS (≥ 3), the two sides alternating who goes first, each on a fresh namespace;
//   steady state at 1k: git and API requests, writes and dry-runs per cycle;
//   commit → applied latency at a 1 s interval, 1k and 10k objects: commits land at a random
//     phase of the poll (uniform over more than one interval), so the wait is half an interval on average;
//   CLI start-up: `plumber --help` and `plumber apply` with nothing to do, process wall time;
//   RSS of `plumber run` in steady state at 1k.
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { loadConfig } from "../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { installCrds, startControlPlane, type ControlPlane } from "../src/local/controlplane.js";
import { startGitServerProcess, type BenchGitServer } from "./gitserver-process.js";
import { createLogger, silentLogger } from "../src/log.js";
import { RepoPoller } from "../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../src/reconcile/runtime.js";
import { sleep } from "../src/util/pool.js";
import { findRepoRoot } from "../test/bed/paths.js";
import { TestRepo } from "../test/bed/testrepo.js";

const execFileP = promisify(execFile);
/** A comma list of object counts; set but empty: none (that part is skipped). */
const sizesOf = (v: string | undefined, d: number[]): number[] => (v === undefined ? d : v.split(",").map(Number).filter((n) => n > 0));
const FIRST_SIZES = sizesOf(process.env.BENCH_FIRST_SIZES, [1000, 5000]);
const LATENCY_SIZES = sizesOf(process.env.BENCH_LATENCY_SIZES, [1000, 10000]);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const LATENCY_COMMITS = Number(process.env.BENCH_COMMITS ?? 20);
const STEADY_CYCLES = 5;
const INTERVAL_MS = 1000;
/** applyConcurrency for plumber's apps (alpha); unset: plumber's default. */
const APPLY_CONCURRENCY = process.env.BENCH_APPLY_CONCURRENCY ? Number(process.env.BENCH_APPLY_CONCURRENCY) : undefined;
/** Parts to leave out while experimenting: BENCH_CORE_SKIP=steady,cli,rss. */
const SKIP = new Set((process.env.BENCH_CORE_SKIP ?? "").split(","));
const MAIN_JS = join(findRepoRoot(), "dist", "src", "cli", "main.js");

type Row = (k: string, v: string) => void;

/**
 * Half ConfigMaps, half Tekton Tasks, 50 objects per file under `dir`: a plumbing repo's shape.
 * `seed` (the fleet section: one per app) makes each app's objects its own.
 */
export function plumbingFiles(n: number, dir: string, seed?: string): Record<string, string> {
  const files: Record<string, string> = {};
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) docs.push(stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${i}` }, data: { index: String(i), ...(seed ? { app: seed } : {}), note: "x".repeat(64) } }));
    else
      docs.push(
        stringify({
          apiVersion: "tekton.dev/v1",
          kind: "Task",
          metadata: { name: `task-${i}` },
          spec: { params: [{ name: "revision", type: "string" }], steps: [{ name: "run", image: "alpine:3.20", script: seed ? `echo ${seed} ${i}` : `echo ${i}` }] },
        }),
      );
  }
  for (let f = 0; f * 50 < docs.length; f++) files[`${dir}/part-${String(f).padStart(3, "0")}.yaml`] = docs.slice(f * 50, f * 50 + 50).join("---\n");
  return files;
}

async function createNamespace(kube: KubeClient, name: string): Promise<void> {
  await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const sec = (ms: number): string => (ms / 1000).toFixed(2);
const list = (xs: number[]): string => `[${xs.map(sec).join(", ")}]`;

interface Bed {
  work: string;
  cp: ControlPlane;
  git: BenchGitServer;
  kube: KubeClient;
  repo: TestRepo;
  runtimes: Runtime[];
  configFor(name: string, namespace: string, path: string): Promise<string>;
  plumber(name: string, namespace: string, path: string): Promise<{ rt: Runtime; poller: RepoPoller; config: string; cacheDir: string }>;
}

export async function benchCore(row: Row): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-"));
  process.stderr.write("starting control plane and git server...\n");
  const cp = await startControlPlane();
  await installCrds(cp.kubeconfigPath, undefined, { binDir: cp.binDir });
  const token = "bench-token";
  const git = await startGitServerProcess({ root: join(work, "git"), auth: { token } });
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  const runtimes: Runtime[] = [];
  try {
    const repo = await TestRepo.create(join(work, "git"), "bench");
    // 1k is always there: the steady-state, CLI and RSS rows use an app of 1,000 objects.
    const sizes = [...new Set([1000, ...FIRST_SIZES, ...LATENCY_SIZES])];
    const all: Record<string, string> = {};
    for (const n of sizes) Object.assign(all, plumbingFiles(n, `n${n}`));
    await repo.commit(all, "objects");
    for (const [p, c] of Object.entries(all)) {
      await mkdir(join(work, "files", p, ".."), { recursive: true });
      await writeFile(join(work, "files", p), c);
    }
    await writeFile(join(work, "token"), token);
    const configFor = async (name: string, namespace: string, path: string): Promise<string> => {
      const file = join(work, `${name}.yaml`);
      const app = { name, repo: "bench", branch: "main", path, cluster: "local", namespace, ...(APPLY_CONCURRENCY ? { applyConcurrency: APPLY_CONCURRENCY } : {}) };
      await writeFile(
        file,
        stringify({
          clusters: [{ name: "local", kubeconfig: cp.kubeconfigPath }],
          repos: [{ name: "bench", url: git.url("bench"), interval: `${INTERVAL_MS / 1000}s`, auth: { tokenFile: "token" } }],
          apps: [app],
          state: { namespace: "plumber-bench" },
          ...(APPLY_CONCURRENCY ? { featureGates: { apiFields: "alpha" } } : {}),
        }),
      );
      return file;
    };
    const plumber: Bed["plumber"] = async (name, namespace, path) => {
      const config = await configFor(name, namespace, path);
      // BENCH_LOG=info shows plumber's own per-phase durations (on stdout, before the table).
      const log = process.env.BENCH_LOG ? createLogger({ level: process.env.BENCH_LOG, pretty: false }) : silentLogger();
      const cacheDir = join(work, `cache-${name}`);
      const rt = await buildRuntime(await loadConfig(config), { log, cacheDir });
      runtimes.push(rt);
      const poller = new RepoPoller(rt.repos.get("bench") as NonNullable<ReturnType<typeof rt.repos.get>>, rt.apps, silentLogger());
      return { rt, poller, config, cacheDir };
    };
    const bed: Bed = { work, cp, git, kube, repo, runtimes, configFor, plumber };

    let steadyAt1k: Awaited<ReturnType<Bed["plumber"]>> | undefined;
    for (const n of FIRST_SIZES) {
      const last = await firstApply(bed, n, row);
      if (n === 1000) steadyAt1k = last;
    }
    steadyAt1k ??= await readyApp(bed, 1000, "steady");
    if (!SKIP.has("steady")) await steadyState(bed, steadyAt1k, 1000, row);
    if (!SKIP.has("cli")) await cliStartup(bed, steadyAt1k.config, steadyAt1k.cacheDir, row);
    for (const n of LATENCY_SIZES) {
      const app = n === 1000 ? steadyAt1k : await readyApp(bed, n, `lat${n}`);
      await latency(bed, app, n, row);
    }
    if (!SKIP.has("rss")) await rss(bed, steadyAt1k, row);
  } finally {
    for (const rt of runtimes) rt.close();
    kube.close();
    await git.stop();
    await cp.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Rounds alternate who goes first, so neither side always meets a warmer (or busier) apiserver. */
async function firstApply(bed: Bed, n: number, row: Row): Promise<Awaited<ReturnType<Bed["plumber"]>>> {
  const kubectlTimes: number[] = [];
  const plumberTimes: number[] = [];
  let last: Awaited<ReturnType<Bed["plumber"]>> | undefined;
  const kubectl = async (round: number): Promise<void> => {
    const ns = `kubectl-${n}-${round}`;
    await createNamespace(bed.kube, ns);
    const t = performance.now();
    await execFileP(join(bed.cp.binDir, "kubectl"), [`--kubeconfig=${bed.cp.kubeconfigPath}`, "apply", "--server-side", "-n", ns, "-R", "-f", join(bed.work, "files", `n${n}`)], {
      maxBuffer: 64 << 20,
    });
    kubectlTimes.push(performance.now() - t);
  };
  const viaPlumber = async (round: number): Promise<void> => {
    const ns = `plumber-${n}-${round}`;
    await createNamespace(bed.kube, ns);
    const app = await bed.plumber(`first-${n}-${round}`, ns, `n${n}`);
    const t = performance.now();
    const res = await app.poller.cycle();
    plumberTimes.push(performance.now() - t);
    const r = res.apps[0]?.result;
    if (r?.kind !== "applied" || r.changeSet.count("created") !== n) throw new Error(`plumber first apply: ${JSON.stringify(r)}`);
    if (last) {
      last.rt.close();
      bed.runtimes.splice(bed.runtimes.indexOf(last.rt), 1);
    }
    last = app;
  };
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      await kubectl(round);
      await viaPlumber(round);
    } else {
      await viaPlumber(round);
      await kubectl(round);
    }
  }
  const k = median(kubectlTimes);
  const p = median(plumberTimes);
  row(`first apply of ${n} objects: kubectl apply --server-side (median of ${ROUNDS})`, `${sec(k)} s  ${list(kubectlTimes)}`);
  row(`first apply of ${n} objects: plumber, in-process (fetch+parse+dry-run+apply+state, median of ${ROUNDS})`, `${sec(p)} s  ${list(plumberTimes)}`);
  row(`first apply of ${n} objects: ratio plumber / kubectl (target ≤ 0.8)`, (p / k).toFixed(2));
  return last as Awaited<ReturnType<Bed["plumber"]>>;
}

/** An app of n objects, applied once and Ready. */
async function readyApp(bed: Bed, n: number, name: string): Promise<Awaited<ReturnType<Bed["plumber"]>>> {
  await createNamespace(bed.kube, name);
  const app = await bed.plumber(name, name, `n${n}`);
  const res = await app.poller.cycle();
  if (res.apps[0]?.result.kind !== "applied") throw new Error(`${name}: ${JSON.stringify(res.apps[0]?.result)}`);
  return app;
}

async function steadyState(bed: Bed, app: Awaited<ReturnType<Bed["plumber"]>>, n: number, row: Row): Promise<void> {
  const client = (app.rt.clusters.get("local") as NonNullable<ReturnType<typeof app.rt.clusters.get>>).client;
  const s0 = client.stats.snapshot();
  await bed.git.resetCounts();
  for (let i = 0; i < STEADY_CYCLES; i++) {
    const res = await app.poller.cycle();
    if (res.apps[0]?.result.kind !== "unchanged") throw new Error(`steady cycle: ${JSON.stringify(res.apps[0]?.result)}`);
  }
  const s1 = client.stats.snapshot();
  const per = (a: number, b: number) => ((b - a) / STEADY_CYCLES).toFixed(1);
  row(`steady state (${n} objects unchanged), per cycle: git requests (at the git server)`, ((await bed.git.count()) / STEADY_CYCLES).toFixed(1));
  row("steady state, per cycle: API requests", `${per(s0.total, s1.total)} (${per(s0.byVerb.list, s1.byVerb.list)} LIST)`);
  row("steady state, per cycle: writes", per(s0.writes, s1.writes));
  row("steady state, per cycle: dry-runs", per(s0.dryRuns, s1.dryRuns));
}

/** Wall time of the CLI process: module loading and config before any request, then one cycle with nothing to do. */
async function cliStartup(bed: Bed, config: string, cacheDir: string, row: Row): Promise<void> {
  const help: number[] = [];
  const apply: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let t = performance.now();
    await execFileP(process.execPath, [MAIN_JS, "--help"]);
    help.push(performance.now() - t);
    t = performance.now();
    await execFileP(process.execPath, [MAIN_JS, "--config", config, "--log-level", "warn", "--cache-dir", cacheDir, "apply"], { maxBuffer: 64 << 20 });
    apply.push(performance.now() - t);
  }
  row(`CLI start-up: plumber --help, process wall time (median of ${ROUNDS})`, `${sec(median(help))} s  ${list(help)}`);
  row(`CLI: plumber apply with nothing to do (1000 objects), process wall time (median of ${ROUNDS})`, `${sec(median(apply))} s  ${list(apply)}`);
}

/** The daemon loop, as `plumber run` drives it; each commit lands at a random phase of the poll. */
async function latency(bed: Bed, app: Awaited<ReturnType<Bed["plumber"]>>, n: number, row: Row): Promise<void> {
  const stop = new AbortController();
  const loop = app.poller.run(stop.signal);
  const lat: number[] = [];
  const ns = app.rt.apps[0]?.app.namespace as string;
  try {
    for (let i = 0; i < LATENCY_COMMITS; i++) {
      const value = `v${i}`;
      await bed.repo.commit({ [`n${n}/latency.yaml`]: stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "latency" }, data: { value } }) }, `latency ${n} ${i}`);
      const t = performance.now();
      for (;;) {
        const cm = await bed.kube.getOptional<{ data?: { value?: string } }>(`/api/v1/namespaces/${ns}/configmaps/latency`);
        if (cm?.data?.value === value) break;
        if (performance.now() - t > 60_000) throw new Error("commit not applied within 60 s");
        await sleep(20);
      }
      lat.push(performance.now() - t);
      // Uniform over more than one poll period: the commit's phase relative to the poll is random.
      await sleep(Math.random() * INTERVAL_MS * 1.5);
    }
  } finally {
    stop.abort();
    await loop;
  }
  row(`commit → applied latency, ${n} objects, 1 s interval, ${LATENCY_COMMITS} commits: p50 (target ≤ 0.8 s)`, `${sec(pct(lat, 50))} s`);
  row(`commit → applied latency, ${n} objects: p95 (target ≤ 1.5 s)`, `${sec(pct(lat, 95))} s`);
}

/** RSS of a real `plumber run` process in steady state over the same 1,000 objects. */
async function rss(bed: Bed, app: Awaited<ReturnType<Bed["plumber"]>>, row: Row): Promise<void> {
  for (const rt of bed.runtimes) rt.close();
  bed.runtimes.length = 0;
  const child = spawn(process.execPath, [MAIN_JS, "--config", app.config, "--log-level", "warn", "--cache-dir", app.cacheDir, "run"], { stdio: ["ignore", "ignore", "inherit"] });
  await sleep(8000);
  const status = await readFile(`/proc/${child.pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  child.kill("SIGTERM");
  row(`plumber run RSS after steady state (1000 objects, ~8 cycles)`, `${(rssKb / 1024).toFixed(0)} MiB`);
}
