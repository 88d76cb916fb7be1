// Bench rows of helper "kustomize": render time and plumber's RSS for kustomize apps in a
// 20,000-file plumbing-shaped repo (test/support/monorepo.ts), on its own git server (cleaned up
// after). Two repos at one commit each:
//   shaped: the real shape (symlinked kodata, binaries, a >1 MiB SVG): closure render only — the
//     old whole-repo render refuses it outright, which is row "whole-repo render, shaped repo";
//   clean: the same files minus symlinks, binaries and big files, so the old whole-repo render
//     (read every file, materialise all of it, then kustomize) can run for comparison.
// Each render is of a different overlay (the per-commit cache would otherwise answer). RSS is
// plumber's own process (kustomize runs in a child either way), sampled every 2 ms during the
// renders; the closure renders run first, so their peak is not inflated by the old path's heap.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createGitHttp } from "../src/git/http.js";
import { GitRepo, type RepoFile } from "../src/git/repo.js";
import { buildClosure, buildKustomization, kustomizeStats } from "../src/kustomize/render.js";
import { computeClosure } from "../src/kustomize/closure.js";
import { detectIsolation } from "../src/kustomize/offline.js";
import { ensureBinaries } from "../src/local/binaries.js";
import { startGitServer } from "../src/local/gitserver.js";
import { TestRepo } from "../test/bed/testrepo.js";
import { commitFiles, monorepoFiles, type MonorepoFile } from "../test/support/monorepo.js";

const FILES = Number(process.env.BENCH_KUSTOMIZE_FILES ?? 20_000);
const RENDERS = Number(process.env.BENCH_KUSTOMIZE_RENDERS ?? 8);
/** The old path takes ~25 s per render at 20k files: fewer of them. */
const OLD_RENDERS = Number(process.env.BENCH_KUSTOMIZE_OLD_RENDERS ?? 3);

/** Peak RSS while `fn` runs, sampled (MiB), and fn's result. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peakMiB: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 2);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, peakMiB: peak / (1 << 20) };
  } finally {
    clearInterval(timer);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** The render plumber did before the closure: every file of the commit, materialised, then kustomize. */
async function wholeRepoRender(repo: GitRepo, sha: string, dir: string, binary: string): Promise<{ files: number; out: string }> {
  const all: RepoFile[] = await repo.readFiles(sha, ".", () => true, { maxFileBytes: 1 << 20, maxTotalBytes: 256 << 20, maxFiles: FILES * 2 });
  const files = new Map(all.map((f) => [f.path, Buffer.from(f.content)]));
  const out = await buildClosure({ files, kustomizations: [], bytes: 0 }, dir, `${dir}/kustomization.yaml`, { binary });
  return { files: files.size, out };
}

export async function benchKustomize(row: (k: string, v: string) => void): Promise<void> {
  const binary = join(await ensureBinaries(), "kustomize");
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-kustomize-"));
  const token = "bench-token";
  const server = await startGitServer({ root: join(work, "git"), auth: { token } });
  try {
    const iso = await detectIsolation(binary);
    row("kustomize isolation in force", iso.mode);
    const base = Object.keys(monorepoFiles({ goFiles: 0 }).files).length;
    const shaped = monorepoFiles({ goFiles: Math.max(0, FILES - base) });
    const clean: Record<string, MonorepoFile> = {};
    for (const [p, f] of Object.entries(shaped.files)) {
      if (typeof f === "object" && !Buffer.isBuffer(f)) continue;
      if (Buffer.isBuffer(f)) {
        if (p.startsWith("tekton/")) clean[p] = "placeholder for a binary file\n"; // the generator still needs it
        continue;
      }
      if (f.length > 1 << 20) continue;
      clean[p] = f;
    }
    const overlays = shaped.buildable.filter((d) => d.startsWith("tekton/cd/") && d.split("/").length === 4).slice(0, RENDERS);
    const open = async (files: Record<string, MonorepoFile>, name: string) => {
      const t = await TestRepo.create(join(work, "git"), name);
      const sha = await commitFiles(t, files);
      const repo = new GitRepo({ url: server.url(name), http: createGitHttp({ auth: { token }, timeoutMs: 120_000 }), cacheDir: join(work, `cache-${name}`) });
      const t0 = performance.now();
      await repo.ensureCommit("main", sha);
      return { repo, sha, fetchMs: performance.now() - t0 };
    };
    const s = await open(shaped.files, "shaped");
    const c = await open(clean, "clean");
    row(`kustomize: repo size (files at the commit)`, `shaped ${Object.keys(shaped.files).length}, clean ${Object.keys(clean).length}`);

    const closureRuns = async (src: { repo: GitRepo; sha: string }) => {
      const times: number[] = [];
      let files = 0;
      for (const dir of overlays) {
        const t0 = performance.now();
        await buildKustomization(src.repo, src.sha, dir, `${dir}/kustomization.yaml`, { binary });
        times.push(performance.now() - t0);
        files = Math.max(files, kustomizeStats.lastClosureFiles);
      }
      return { times, files };
    };
    const reads: number[] = [];
    for (const dir of overlays) {
      const t0 = performance.now();
      await computeClosure(s.repo, s.sha, dir);
      reads.push(performance.now() - t0);
    }
    row(`kustomize closure computation alone (listDir/readFileBytes), shaped repo, median`, `${median(reads).toFixed(0)} ms`);
    const rss0 = process.memoryUsage().rss / (1 << 20);
    const cs = await peakRss(() => closureRuns(s));
    row(`kustomize render, closure, shaped repo (median of ${overlays.length} overlays)`, `${median(cs.value.times).toFixed(0)} ms, ≤${cs.value.files} files read and materialised`);
    const cc = await peakRss(() => closureRuns(c));
    row(`kustomize render, closure, clean repo (median of ${overlays.length} overlays)`, `${median(cc.value.times).toFixed(0)} ms`);
    row("kustomize render, closure: plumber peak RSS", `${Math.max(cs.peakMiB, cc.peakMiB).toFixed(0)} MiB (before: ${rss0.toFixed(0)} MiB)`);

    try {
      await wholeRepoRender(s.repo, s.sha, overlays[0] as string, binary);
      row("kustomize render, whole repo, shaped repo", "rendered (unexpected)");
    } catch (e) {
      row("kustomize render, whole repo, shaped repo", `refused: ${(e as Error).message.split("\n")[0]?.slice(0, 90)}`);
    }
    if (OLD_RENDERS <= 0) return;
    const wc = await peakRss(async () => {
      const times: number[] = [];
      let files = 0;
      for (const dir of overlays.slice(0, OLD_RENDERS)) {
        const t0 = performance.now();
        files = (await wholeRepoRender(c.repo, c.sha, dir, binary)).files;
        times.push(performance.now() - t0);
      }
      return { times, files };
    });
    const same = (await wholeRepoRender(c.repo, c.sha, overlays[0] as string, binary)).out === (await buildKustomization(c.repo, c.sha, overlays[0] as string, `${overlays[0]}/kustomization.yaml`, { binary }));
    row("kustomize render: closure output equals whole-repo output", same ? "yes" : "NO");
    row(`kustomize render, whole repo (old path), clean repo (median of ${Math.min(OLD_RENDERS, overlays.length)})`, `${median(wc.value.times).toFixed(0)} ms, ${wc.value.files} files read and materialised`);
    row("kustomize render, whole repo (old path): plumber peak RSS", `${wc.peakMiB.toFixed(0)} MiB`);
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

// `node dist/bench/kustomize.js` runs just these rows.
if (process.argv[1]?.endsWith("/bench/kustomize.js")) {
  benchKustomize((k, v) => process.stdout.write(`| ${k} | ${v} |\n`)).catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
