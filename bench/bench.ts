// npm run bench: plumber against the local control plane and git server, side by side with
// kubectl where there is something to compare. Prints one table. Never a timed test.
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { loadConfig } from "../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { createLogger, silentLogger } from "../src/log.js";
import { RepoPoller } from "../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../src/reconcile/runtime.js";
import { findRepoRoot } from "../test/bed/paths.js";
import { installCrds, startControlPlane } from "../src/local/controlplane.js";
import { startGitServer } from "../src/local/gitserver.js";
import { TestRepo } from "../test/bed/testrepo.js";
import { sleep } from "../src/util/pool.js";
import { benchEngine } from "./engine.js";
import { benchGit, benchGitMemory } from "./git.js";
import { benchKustomize } from "./kustomize.js";
import { benchService } from "./service.js";
import { benchShard } from "./shard.js";

const execFileP = promisify(execFile);
const N = Number(process.env.BENCH_OBJECTS ?? 1000);
const LATENCY_COMMITS = Number(process.env.BENCH_COMMITS ?? 20);
const STEADY_CYCLES = 5;

const rows: [string, string][] = [];
const row = (k: string, v: string) => {
  rows.push([k, v]);
  process.stderr.write(`  ${k}: ${v}\n`);
};

function manifests(): Record<string, string> {
  // Half ConfigMaps, half Tekton Tasks, 50 objects per file: a plumbing repo's shape.
  const files: Record<string, string> = {};
  const docs: string[] = [];
  for (let i = 0; i < N; i++) {
    if (i % 2 === 0) docs.push(stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${i}` }, data: { index: String(i), note: "x".repeat(64) } }));
    else
      docs.push(
        stringify({
          apiVersion: "tekton.dev/v1",
          kind: "Task",
          metadata: { name: `task-${i}` },
          spec: { params: [{ name: "revision", type: "string" }], steps: [{ name: "run", image: "alpine:3.20", script: `echo ${i}` }] },
        }),
      );
  }
  for (let f = 0; f * 50 < docs.length; f++) files[`objects/part-${String(f).padStart(3, "0")}.yaml`] = docs.slice(f * 50, f * 50 + 50).join("---\n");
  return files;
}

async function createNamespace(kube: KubeClient, name: string): Promise<void> {
  await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

async function benchCore(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-"));
  process.stderr.write("starting control plane and git server...\n");
  const cp = await startControlPlane();
  await installCrds(cp.kubeconfigPath, undefined, { binDir: cp.binDir });
  const token = "bench-token";
  const git = await startGitServer({ root: join(work, "git"), auth: { token } });
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  const runtimes: Runtime[] = [];
  try {
    const repo = await TestRepo.create(join(work, "git"), "bench");
    const files = manifests();
    await repo.commit(files, "1000 objects");
    const dir = join(work, "files");
    for (const [p, c] of Object.entries(files)) {
      await mkdir(join(dir, p, ".."), { recursive: true });
      await writeFile(join(dir, p), c);
    }
    await writeFile(join(work, "token"), token);

    const configFor = async (name: string, namespace: string, interval: string): Promise<string> => {
      const file = join(work, `${name}.yaml`);
      await writeFile(
        file,
        stringify({
          clusters: [{ name: "local", kubeconfig: cp.kubeconfigPath }],
          repos: [{ name: "bench", url: git.url("bench"), interval, auth: { tokenFile: "token" } }],
          apps: [{ name, repo: "bench", branch: "main", path: ".", cluster: "local", namespace }],
          state: { namespace: "plumber-bench" },
        }),
      );
      return file;
    };

    // First apply, side by side: kubectl and plumber alternate on fresh namespaces.
    const kubectlTimes: number[] = [];
    const plumberTimes: number[] = [];
    let steady: { rt: Runtime; poller: RepoPoller; config: string } | undefined;
    for (let round = 0; round < 2; round++) {
      const kns = `kubectl-${round}`;
      await createNamespace(kube, kns);
      let t = performance.now();
      await execFileP(join(cp.binDir, "kubectl"), [`--kubeconfig=${cp.kubeconfigPath}`, "apply", "--server-side", "-n", kns, "-R", "-f", dir], {
        maxBuffer: 64 << 20,
      });
      kubectlTimes.push(performance.now() - t);

      const pns = `plumber-${round}`;
      await createNamespace(kube, pns);
      const config = await configFor(`bench-${round}`, pns, "1s");
      // BENCH_LOG=info shows plumber's own per-phase durations (on stdout, before the table).
      const log = process.env.BENCH_LOG ? createLogger({ level: process.env.BENCH_LOG, pretty: false }) : silentLogger();
      const rt = await buildRuntime(await loadConfig(config), { log, cacheDir: join(work, `cache-${round}`) });
      runtimes.push(rt);
      const poller = new RepoPoller(rt.repos.get("bench") as NonNullable<ReturnType<typeof rt.repos.get>>, rt.apps, silentLogger());
      t = performance.now();
      const res = await poller.cycle();
      plumberTimes.push(performance.now() - t);
      const r = res.apps[0]?.result;
      if (r?.kind !== "applied" || r.changeSet.count("created") !== N) throw new Error(`plumber first apply: ${JSON.stringify(r)}`);
      steady = { rt, poller, config };
    }
    const k = Math.min(...kubectlTimes);
    const p = Math.min(...plumberTimes);
    row(`first apply of ${N} objects: kubectl apply --server-side (best of 2)`, `${(k / 1000).toFixed(2)} s  [${kubectlTimes.map((x) => (x / 1000).toFixed(2)).join(", ")}]`);
    row(`first apply of ${N} objects: plumber (fetch+parse+dry-run+apply+state, best of 2)`, `${(p / 1000).toFixed(2)} s  [${plumberTimes.map((x) => (x / 1000).toFixed(2)).join(", ")}]`);
    row("first apply ratio plumber / kubectl (target ≤ 1.0)", (p / k).toFixed(2));

    // Steady state: branch unchanged, no drift.
    if (!steady) throw new Error("no runtime");
    const client = (steady.rt.clusters.get("local") as NonNullable<ReturnType<typeof steady.rt.clusters.get>>).client;
    const s0 = client.stats.snapshot();
    git.resetCounts();
    for (let i = 0; i < STEADY_CYCLES; i++) {
      const res = await steady.poller.cycle();
      if (res.apps[0]?.result.kind !== "unchanged") throw new Error(`steady cycle: ${JSON.stringify(res.apps[0]?.result)}`);
    }
    const s1 = client.stats.snapshot();
    const per = (a: number, b: number) => ((b - a) / STEADY_CYCLES).toFixed(1);
    row(`steady state (${N} objects unchanged), per cycle: git requests (at the git server)`, (git.requests.total / STEADY_CYCLES).toFixed(1));
    row("steady state, per cycle: API requests", `${per(s0.total, s1.total)} (${per(s0.byVerb.list, s1.byVerb.list)} LIST)`);
    row("steady state, per cycle: writes", per(s0.writes, s1.writes));
    row("steady state, per cycle: dry-runs", per(s0.dryRuns, s1.dryRuns));

    // Commit → applied latency with a 1 s interval: the daemon loop, as `plumber run` drives it.
    const stop = new AbortController();
    const loop = steady.poller.run(stop.signal);
    const lat: number[] = [];
    const ns = "plumber-1";
    for (let i = 0; i < LATENCY_COMMITS; i++) {
      const value = `v${i}`;
      await repo.commit({ "objects/latency.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "latency" }, data: { value } }) }, `latency ${i}`);
      const t = performance.now();
      for (;;) {
        const cm = await kube.getOptional<{ data?: { value?: string } }>(`/api/v1/namespaces/${ns}/configmaps/latency`);
        if (cm?.data?.value === value) break;
        if (performance.now() - t > 30_000) throw new Error("commit not applied within 30 s");
        await sleep(20);
      }
      lat.push(performance.now() - t);
      await sleep(Math.random() * 300);
    }
    stop.abort();
    await loop;
    row(`commit → applied latency, 1 s interval, ${LATENCY_COMMITS} commits: p50`, `${(pct(lat, 50) / 1000).toFixed(2)} s`);
    row("commit → applied latency: p95", `${(pct(lat, 95) / 1000).toFixed(2)} s`);

    // RSS of a real `plumber run` process in steady state over the same 1,000+ objects.
    for (const rt of runtimes) rt.close();
    runtimes.length = 0;
    const child = spawn(process.execPath, [join(findRepoRoot(), "dist", "src", "cli", "main.js"), "--config", steady.config, "--log-level", "warn", "--cache-dir", join(work, "cache-1"), "run"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    await sleep(8000);
    const status = await readFile(`/proc/${child.pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    child.kill("SIGTERM");
    row(`plumber run RSS after steady state (${N} objects, ~8 cycles)`, `${(rssKb / 1024).toFixed(0)} MiB`);
  } finally {
    for (const rt of runtimes) rt.close();
    kube.close();
    await git.stop();
    await cp.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Each section starts (and stops) what it needs; BENCH_ONLY=core,git,... picks sections. */
const SECTIONS: [string, () => Promise<void>][] = [
  ["core", benchCore],
  ["engine", () => benchEngine(row)],
  ["git", () => benchGit(row)],
  ["gitMemory", () => benchGitMemory(row)],
  ["kustomize", () => benchKustomize(row)],
  ["service", () => benchService(row)],
  ["shard", () => benchShard(row)],
];

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(",").map((x) => x.trim());
  let failed = false;
  for (const [name, run] of SECTIONS) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`--- bench section ${name}\n`);
    try {
      await run();
    } catch (e) {
      failed = true;
      row(`section ${name}`, `FAILED: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n| ${"measure".padEnd(w)} | value |\n|${"-".repeat(w + 2)}|-------|\n`);
  for (const [k, v] of rows) process.stdout.write(`| ${k.padEnd(w)} | ${v} |\n`);
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
