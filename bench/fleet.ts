// Fleet bench (BENCH_ONLY=fleet): many apps on one control plane, 50 apps × 100 objects (5k) on
// one repo and on 10 repos of 5 apps. Rows: steady-state requests per round, commit → applied for
// one app while a sibling on the same repo sits in a post-check longer than the measurement, the
// RSS of a real `plumber run` (started as the bin and the image start it) at 5k and at 20k objects.
//
//   BENCH_FLEET_APPS=50 BENCH_FLEET_OBJECTS=100 BENCH_FLEET_BIG_OBJECTS=400 BENCH_FLEET_COMMITS=10
//   BENCH_FLEET_COMPARE=/path/to/other/checkout: its dist/src/cli/main.js is measured for RSS too,
//   alternating with this one on the same objects (base vs change, same run).
import { plumbingFiles } from "./core.js";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { loadConfig } from "../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { silentLogger } from "../src/log.js";
import { installCrds, startControlPlane } from "../src/local/controlplane.js";
import { startGitServerProcess, type BenchGitServer } from "./gitserver-process.js";
import { repoPoller, type RepoPoller } from "../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../src/reconcile/runtime.js";
import { sleep } from "../src/util/pool.js";
import { findRepoRoot } from "../test/bed/paths.js";
import { TestRepo } from "../test/bed/testrepo.js";

type Row = (k: string, v: string) => void;

const APPS = Number(process.env.BENCH_FLEET_APPS ?? 50);
const PER_APP = Number(process.env.BENCH_FLEET_OBJECTS ?? 100);
const BIG_PER_APP = Number(process.env.BENCH_FLEET_BIG_OBJECTS ?? 400);
const REPOS = 10;
const COMMITS = Number(process.env.BENCH_FLEET_COMMITS ?? 10);
const STEADY_ROUNDS = 3;
/** Rounds every app must have finished before RSS is sampled, and how long it is sampled. */
const RSS_WARM_ROUNDS = 3;
const RSS_WINDOW_MS = Number(process.env.BENCH_FLEET_RSS_WINDOW_S ?? 15) * 1000;
const TOKEN = "bench-token";
/** BENCH_FLEET_PARTS=steady,latency,ten,rss,big (default all): to look at one part. */
const PARTS = new Set((process.env.BENCH_FLEET_PARTS ?? "steady,latency,ten,rss,big").split(",").map((x) => x.trim()));

const log = (line: string) => process.stderr.write(`  [fleet] ${line}\n`);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface AppDef {
  name: string;
  repo: string;
  path: string;
  namespace: string;
  checks?: unknown;
}

interface Layout {
  label: string;
  apps: AppDef[];
  repos: Map<string, TestRepo>;
  stateNamespace: string;
}

/** A post-check no controller ever finishes: a PipelineRun nobody runs, timing out long after the bench. */
const LONG_CHECK = {
  post: [{ name: "smoke", timeout: "30m", pipelineRun: { manifest: { apiVersion: "tekton.dev/v1", kind: "PipelineRun", metadata: { name: "ignored" }, spec: { pipelineRef: { name: "smoke-tests" } } } } }],
};

class FleetBed {
  private constructor(
    readonly work: string,
    readonly kubeconfig: string,
    readonly kube: KubeClient,
    readonly git: BenchGitServer,
    readonly stop: () => Promise<void>,
  ) {}

  static async start(): Promise<FleetBed> {
    const work = await mkdtemp(join(tmpdir(), "plumber-bench-fleet-"));
    const cp = await startControlPlane();
    await installCrds(cp.kubeconfigPath, undefined, { binDir: cp.binDir });
    const git = await startGitServerProcess({ root: join(work, "git"), auth: { token: TOKEN } });
    const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
    await writeFile(join(work, "token"), TOKEN);
    return new FleetBed(work, cp.kubeconfigPath, kube, git, async () => {
      kube.close();
      await git.stop();
      await cp.stop();
      await rm(work, { recursive: true, force: true });
    });
  }

  async namespace(name: string): Promise<void> {
    await this.kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
  }

  /** `repos` repos sharing `apps` apps of `perApp` objects each, every app in its own namespace. */
  async layout(label: string, prefix: string, apps: number, repos: number, perApp: number): Promise<Layout> {
    const out: Layout = { label, apps: [], repos: new Map(), stateNamespace: `${prefix}-state` };
    const perRepo = Math.ceil(apps / repos);
    for (let r = 0; r < repos; r++) {
      const name = `${prefix}-r${r}`;
      const repo = await TestRepo.create(join(this.work, "git"), name);
      const files: Record<string, string> = {};
      for (let a = r * perRepo; a < Math.min(apps, (r + 1) * perRepo); a++) {
        const app: AppDef = { name: `${prefix}-app-${String(a).padStart(2, "0")}`, repo: name, path: `apps/app-${a}`, namespace: `${prefix}-ns-${a}` };
        Object.assign(files, plumbingFiles(perApp, app.path, app.name));
        out.apps.push(app);
        await this.namespace(app.namespace);
      }
      await repo.commit(files, `${label}: initial`);
      out.repos.set(name, repo);
    }
    return out;
  }

  /** `concurrency`: only for setting up (the first apply); what is measured runs with the defaults. */
  async config(l: Layout, file: string, interval: string, checksOn?: string, concurrency?: number): Promise<string> {
    const path = join(this.work, file);
    await writeFile(
      path,
      stringify({
        clusters: [{ name: "local", kubeconfig: this.kubeconfig }],
        repos: [...l.repos.keys()].map((name) => ({ name, url: this.git.url(name), interval, auth: { tokenFile: "token" }, ...(concurrency ? { concurrency } : {}) })),
        apps: l.apps.map((a) => ({
          name: a.name,
          repo: a.repo,
          branch: "main",
          path: a.path,
          cluster: "local",
          namespace: a.namespace,
          ...(a.name === checksOn ? { checks: LONG_CHECK } : {}),
        })),
        state: { namespace: l.stateNamespace },
      }),
    );
    return path;
  }
}

async function inProcess(configFile: string, cacheDir: string): Promise<{ rt: Runtime; pollers: RepoPoller[] }> {
  const rt = await buildRuntime(await loadConfig(configFile), { log: silentLogger(), cacheDir });
  return { rt, pollers: [...rt.repos.keys()].map((r) => repoPoller(rt, r, silentLogger())) };
}

/** One round of every repo, as the daemon runs them (repos side by side); results checked. */
async function round(pollers: RepoPoller[], expect: string): Promise<void> {
  const res = await Promise.all(pollers.map((p) => p.cycle()));
  for (const r of res) {
    if (r.error) throw new Error(`${r.repo}: ${r.error}`);
    for (const a of r.apps) if (a.result.kind !== expect) throw new Error(`${a.app}: ${a.result.kind} (expected ${expect}): ${JSON.stringify(a.result).slice(0, 300)}`);
  }
}

async function firstApply(bed: FleetBed, l: Layout): Promise<string> {
  const config = await bed.config(l, `${l.stateNamespace}-setup.yaml`, "1s", undefined, 4);
  await bed.namespace(l.stateNamespace);
  const { rt, pollers } = await inProcess(config, join(bed.work, `cache-${l.stateNamespace}`));
  try {
    const t = performance.now();
    await round(pollers, "applied");
    log(`${l.label}: first apply ${((performance.now() - t) / 1000).toFixed(1)} s`);
  } finally {
    rt.close();
  }
  return bed.config(l, `${l.stateNamespace}.yaml`, "1s");
}

async function steady(bed: FleetBed, l: Layout, config: string, row: Row): Promise<void> {
  const { rt, pollers } = await inProcess(config, join(bed.work, `cache-${l.stateNamespace}`));
  try {
    await round(pollers, "unchanged");
    const client = (rt.clusters.get("local") as NonNullable<ReturnType<typeof rt.clusters.get>>).client;
    const s0 = client.stats.snapshot();
    await bed.git.resetCounts();
    for (let i = 0; i < STEADY_ROUNDS; i++) await round(pollers, "unchanged");
    const s1 = client.stats.snapshot();
    const per = (a: number, b: number) => ((b - a) / STEADY_ROUNDS).toFixed(1);
    row(`fleet ${l.label}: steady round, git requests (at the git server)`, ((await bed.git.count()) / STEADY_ROUNDS).toFixed(1));
    row(`fleet ${l.label}: steady round, API requests`, `${per(s0.total, s1.total)} (${per(s0.byVerb.list, s1.byVerb.list)} LIST, ${per(s0.byVerb.get, s1.byVerb.get)} GET)`);
    row(`fleet ${l.label}: steady round, writes / dry-runs`, `${per(s0.writes, s1.writes)} / ${per(s0.dryRuns, s1.dryRuns)}`);
  } finally {
    rt.close();
  }
}

/**
 * The daemon loop (poller.run) with a 1 s interval; app 0 is sent into a 30 min post-check, then
 * app 1 (same repo) gets COMMITS commits, each timed from the push to the object's new value.
 */
async function latency(bed: FleetBed, l: Layout, row: Row): Promise<void> {
  const [slow, fast] = l.apps as [AppDef, AppDef];
  const config = await bed.config(l, `${l.stateNamespace}-checks.yaml`, "1s", slow.name);
  const { rt, pollers } = await inProcess(config, join(bed.work, `cache-${l.stateNamespace}`));
  const stop = new AbortController();
  const loops = pollers.map((p) => p.run(stop.signal));
  const repo = l.repos.get(slow.repo) as TestRepo;
  const runs = `/apis/tekton.dev/v1/namespaces/${slow.namespace}/pipelineruns`;
  try {
    await repo.commit({ [`${slow.path}/slow.yaml`]: stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "slow" }, data: { v: "1" } }) }, "slow: into its post-check");
    const t0 = performance.now();
    for (;;) {
      const list = await bed.kube.request<{ items: unknown[] }>({ method: "GET", path: runs });
      if (list.body.items.length > 0) break;
      if (performance.now() - t0 > 60_000) throw new Error("the slow app's post-check did not start within 60 s");
      await sleep(100);
    }
    const lat: number[] = [];
    for (let i = 0; i < COMMITS; i++) {
      const value = `v${i}`;
      await repo.commit({ [`${fast.path}/latency.yaml`]: stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "latency" }, data: { value } }) }, `latency ${i}`);
      const t = performance.now();
      for (;;) {
        const cm = await bed.kube.getOptional<{ data?: { value?: string } }>(`/api/v1/namespaces/${fast.namespace}/configmaps/latency`);
        if (cm?.data?.value === value) break;
        if (performance.now() - t > 60_000) throw new Error("commit not applied within 60 s");
        await sleep(20);
      }
      lat.push(performance.now() - t);
      await sleep(Math.random() * 300);
    }
    const state = await rt.apps.find((a) => a.app.name === slow.name)?.currentState();
    if (state?.phase !== "Verifying") throw new Error(`the slow app left its post-check during the measurement: ${state?.phase}`);
    row(`fleet ${l.label}: commit → applied, 1 s interval, a sibling in a 30 min post-check, ${COMMITS} commits: p50 / p95`, `${(pct(lat, 50) / 1000).toFixed(2)} s / ${(pct(lat, 95) / 1000).toFixed(2)} s`);
  } finally {
    stop.abort();
    await Promise.all(loops);
    rt.close();
  }
}

function rssKiB(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0), hwm: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) };
}

/** Sum of plumber_reconcile_total, from the process's /metrics. */
async function reconciles(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(/^plumber_reconcile_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
    return n;
  } catch {
    return 0;
  }
}

/**
 * How the image's Deployment starts plumber: the node flags of the Dockerfile's ENTRYPOINT and
 * the NODE_OPTIONS of manifests/50-deployment.yaml, read from the checkout measured (RSS depends
 * on them: the young generation's size above all).
 */
function startedAs(root: string): { flags: string[]; nodeOptions: string } {
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(root, "Dockerfile"), "utf8"))?.[1];
  const argv = entry ? (JSON.parse(entry) as string[]) : [];
  const flags = argv.slice(1).filter((a) => a.startsWith("--"));
  let nodeOptions = "";
  for (const doc of parseAllDocuments(readFileSync(join(root, "manifests", "50-deployment.yaml"), "utf8"))) {
    const d = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } } } | null;
    if (d?.kind !== "Deployment") continue;
    nodeOptions = d.spec?.template?.spec?.containers?.[0]?.env?.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
  }
  return { flags, nodeOptions };
}

interface RssSample {
  median: number;
  max: number;
  hwm: number;
  /** CPU seconds per minute over the sampling window. */
  cpu: number;
}

function cpuTicks(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/** A real `plumber run`, sampled once every app has done RSS_WARM_ROUNDS rounds. */
async function runRss(root: string, how: { flags: string[]; nodeOptions: string }, config: string, cacheDir: string, apps: number): Promise<RssSample> {
  const port = await freePort();
  const args = [...how.flags, join(root, "dist", "src", "cli", "main.js"), "--config", config, "--log-level", "warn", "--cache-dir", cacheDir, "run", "--metrics-addr", `127.0.0.1:${port}`, "--no-leader-elect"];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"], cwd: root, env: { ...process.env, NODE_OPTIONS: how.nodeOptions } });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    const t0 = performance.now();
    while ((await reconciles(port)) < apps * RSS_WARM_ROUNDS) {
      if (child.exitCode !== null) throw new Error(`plumber run exited ${child.exitCode}`);
      if (performance.now() - t0 > 300_000) throw new Error("plumber run: no steady state within 300 s");
      await sleep(500);
    }
    const samples: number[] = [];
    const pid = child.pid as number;
    const c0 = cpuTicks(pid);
    const w0 = performance.now();
    while (performance.now() - w0 < RSS_WINDOW_MS) {
      samples.push(rssKiB(pid).rss);
      await sleep(250);
    }
    const cpu = (cpuTicks(pid) - c0) / 100 / ((performance.now() - w0) / 60_000);
    const { hwm } = rssKiB(pid);
    const mib = (k: number) => k / 1024;
    return { median: mib(pct(samples, 50)), max: mib(Math.max(...samples)), hwm: mib(hwm), cpu };
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

/**
 * RSS rows: this checkout started as the image's Deployment starts it, and as the npm bin does
 * (node and the script, no flags); with BENCH_FLEET_COMPARE, the other checkout as its image
 * starts it, alternating with this one.
 */
async function rssRows(bed: FleetBed, label: string, config: string, apps: number, row: Row): Promise<void> {
  const compare = process.env.BENCH_FLEET_COMPARE;
  const here = findRepoRoot();
  const bare = { flags: [], nodeOptions: "" };
  const variants: { name: string; root: string; how: { flags: string[]; nodeOptions: string } }[] = [
    ...(compare ? [{ name: "base", root: compare, how: startedAs(compare) }] : []),
    { name: compare ? "this" : "image", root: here, how: startedAs(here) },
    { name: "npm bin", root: here, how: bare },
  ];
  const rounds = compare ? 2 : 1;
  const got = new Map<string, RssSample[]>();
  for (let r = 0; r < rounds; r++)
    for (const v of variants) {
      if (r > 0 && v.how === bare) continue;
      const m = await runRss(v.root, v.how, config, join(bed.work, `cache-run-${v.name.replace(/\W/g, "")}`), apps);
      log(`${label} ${v.name}: RSS median ${m.median.toFixed(0)} MiB, max ${m.max.toFixed(0)}, peak ${m.hwm.toFixed(0)}, CPU ${m.cpu.toFixed(1)} s/min`);
      got.set(v.name, [...(got.get(v.name) ?? []), m]);
    }
  const fmt = (ms: RssSample[]) => ms.map((m) => `${m.median.toFixed(0)} (max ${m.max.toFixed(0)}, peak ${m.hwm.toFixed(0)}; CPU ${m.cpu.toFixed(1)} s/min)`).join("; ");
  for (const v of variants) {
    const as = `node ${[...v.how.flags, "main.js"].join(" ")}${v.how.nodeOptions ? `, NODE_OPTIONS=${v.how.nodeOptions}` : ""}`;
    row(`fleet RSS of plumber run, ${label} [${v.name}: ${as}]: steady median MiB (window max, process peak; CPU)`, fmt(got.get(v.name) ?? []));
  }
  if (compare) {
    const med = (name: string) => pct((got.get(name) ?? []).map((m) => m.median), 50);
    row(`fleet RSS ${label}: this / base (as the image starts each)`, (med("this") / med("base")).toFixed(2));
  }
}

export async function benchFleet(row: Row): Promise<void> {
  log("starting control plane and git server...");
  const bed = await FleetBed.start();
  try {
    const one = await bed.layout(`${APPS}×${PER_APP} on 1 repo`, "f1", APPS, 1, PER_APP);
    const ten = PARTS.has("ten") ? await bed.layout(`${APPS}×${PER_APP} on ${REPOS} repos`, "f10", APPS, REPOS, PER_APP) : one;
    for (const l of [one, ...(PARTS.has("ten") ? [ten] : [])]) {
      const config = await firstApply(bed, l);
      if (PARTS.has("steady")) await steady(bed, l, config, row);
      if (PARTS.has("latency")) await latency(bed, l, row);
    }
    // RSS in steady state: the one-repo layout (its latency config: one app Verifying, as a fleet has).
    if (PARTS.has("rss")) await rssRows(bed, `${APPS * PER_APP} objects / ${APPS} apps`, await bed.config(one, `${one.stateNamespace}-checks.yaml`, "1s", one.apps[0]?.name), APPS, row);
    if (PARTS.has("big")) {
      const big = await bed.layout(`${APPS}×${BIG_PER_APP} on 1 repo`, "f20", APPS, 1, BIG_PER_APP);
      const bigConfig = await firstApply(bed, big);
      await rssRows(bed, `${APPS * BIG_PER_APP} objects / ${APPS} apps`, bigConfig, APPS, row);
    }
    if (process.env.BENCH_FLEET_HOLD) {
      log(`holding the bed: kubeconfig ${bed.kubeconfig}, work ${bed.work}; touch ${bed.work}/release to stop`);
      while (!existsSync(join(bed.work, "release"))) await sleep(1000);
    }
  } finally {
    await bed.stop();
  }
}

// Run on its own: node dist/bench/fleet.js
if (process.argv[1]?.endsWith(join("bench", "fleet.js"))) {
  const rows: [string, string][] = [];
  await benchFleet((k, v) => {
    rows.push([k, v]);
    process.stderr.write(`  ${k}: ${v}\n`);
  });
  for (const [k, v] of rows) process.stdout.write(`| ${k} | ${v} |\n`);
}
