// Git layer bench: the git-CLI GitRepo against the former isomorphic-git design (thin packs
// stored as sent, trees read with readTree/readBlob), on a repo with real deltas (many revisions
// of the same large files), after the branch moved old → new → old → sibling → new 50 times.
// Each variant runs in its own child process (its own git server too) so one that spins to its
// heap limit cannot take the bench with it; peak RSS is sampled for the process and, separately,
// for the git children it starts (the server's http-backend processes are left out).
//
//   node dist/bench/git.js            (or benchGit(row) from bench/bench.ts)
//   BENCH_GIT_CYCLES=50 (default), BENCH_GIT_TIMEOUT_S=600 per variant
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as iso from "isomorphic-git";
import type { HttpClient } from "isomorphic-git";
import { createGitHttp } from "../src/git/http.js";
import { pkt } from "../src/git/refs.js";
import { GitRepo } from "../src/git/repo.js";
import { startGitServer } from "../src/local/gitserver.js";
import { git, TestRepo } from "../test/bed/testrepo.js";

const CYCLES = Number(process.env.BENCH_GIT_CYCLES ?? 50);
const TIMEOUT_S = Number(process.env.BENCH_GIT_TIMEOUT_S ?? 600);
const CHILD_FLAG = "--plumber-git-bench-child";

interface Result {
  variant: string;
  ok: boolean;
  error?: string;
  steps: number;
  fetches: number;
  msPerFetch: number;
  msPerRead: number;
  peakRssMiB: number;
  peakChildRssMiB: number;
  cacheMiB: number;
  packs: number;
  steadyRequests: number;
}

/** A ~1 MiB text file; each revision changes a few lines (a good delta base for the others). */
function bigFile(seed: string, rev: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 14_000; i++) lines.push(`${seed} ${i} ${i % 613 === rev % 613 || i === rev ? `rev ${rev}` : "stable"} ${"y".repeat(56)}`);
  return lines.join("\n") + "\n";
}

function revFiles(rev: number): Record<string, string> {
  const f: Record<string, string> = { "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  rev: "${rev}"\n` };
  for (const s of ["a", "b", "c"]) f[`app/data-${s}.txt`] = bigFile(s, rev);
  return f;
}

// ---- RSS sampling ----

function procTable(): Map<number, { ppid: number; comm: string; rssKiB: number }> {
  const out = new Map<number, { ppid: number; comm: string; rssKiB: number }>();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const close = st.lastIndexOf(")");
      const comm = st.slice(st.indexOf("(") + 1, close);
      const fields = st.slice(close + 2).split(" ");
      const rssPages = Number(fields[21]);
      out.set(Number(d), { ppid: Number(fields[1]), comm, rssKiB: (rssPages * 4096) / 1024 });
    } catch {
      // gone
    }
  }
  return out;
}

/** Sum of RSS of this process's git descendants, excluding the test server's http-backend subtrees. */
function childGitRssKiB(): number {
  const t = procTable();
  const kids = new Map<number, number[]>();
  for (const [pid, p] of t) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), pid]);
  let sum = 0;
  const walk = (pid: number): void => {
    for (const k of kids.get(pid) ?? []) {
      const p = t.get(k)!;
      if (p.comm.startsWith("git-http-backen")) continue;
      sum += p.rssKiB;
      walk(k);
    }
  };
  walk(process.pid);
  return sum;
}

// ---- the former isomorphic-git design, for comparison ----

function addThinPack(buf: Buffer): Buffer {
  const len = Number.parseInt(buf.subarray(0, 4).toString("latin1"), 16);
  if (!Number.isInteger(len) || len < 50 || len > buf.length) return buf;
  const line = buf.subarray(4, len).toString("latin1");
  const m = /^want [0-9a-f]{40} ([^\n]*)(\n?)$/.exec(line);
  if (!m || m[1]!.split(" ").includes("thin-pack")) return buf;
  const nl = `want ${line.slice(5, 45)} ${m[1]} thin-pack${m[2]}`;
  return Buffer.concat([Buffer.from((4 + nl.length).toString(16).padStart(4, "0")), Buffer.from(nl, "latin1"), buf.subarray(len)]);
}

function withThinPack(http: HttpClient): HttpClient {
  return {
    async request(req) {
      if ((req.method ?? "GET") !== "POST" || !req.body) return http.request(req);
      const chunks: Uint8Array[] = [];
      for await (const c of req.body as AsyncIterable<Uint8Array>) chunks.push(c);
      return http.request({ ...req, body: [addThinPack(Buffer.concat(chunks))] as unknown as AsyncIterableIterator<Uint8Array> });
    },
  };
}

class IsoRepo {
  private cache: object = {};
  constructor(
    readonly url: string,
    private readonly http: HttpClient,
    readonly gitdir: string,
  ) {}
  async listHeads(): Promise<Map<string, string>> {
    const refs = await iso.listServerRefs({ http: this.http, url: this.url, protocolVersion: 1, prefix: "refs/heads/" });
    return new Map(refs.map((r) => [r.ref.slice("refs/heads/".length), r.oid]));
  }
  async hasCommit(sha: string): Promise<boolean> {
    try {
      return (await iso.readObject({ fs, gitdir: this.gitdir, cache: this.cache, oid: sha })).type === "commit";
    } catch {
      return false;
    }
  }
  async ensureCommit(branch: string, sha: string): Promise<void> {
    if (await this.hasCommit(sha)) return;
    if (!fs.existsSync(path.join(this.gitdir, "HEAD"))) {
      await iso.init({ fs, gitdir: this.gitdir, bare: true });
      await iso.addRemote({ fs, gitdir: this.gitdir, remote: "origin", url: this.url });
    }
    const r = await iso.fetch({ fs, http: this.http, gitdir: this.gitdir, cache: this.cache, url: this.url, ref: branch, remoteRef: `refs/heads/${branch}`, singleBranch: true, depth: 1, tags: false });
    await iso.writeRef({ fs, gitdir: this.gitdir, ref: `refs/heads/${branch}`, value: r.fetchHead!, force: true });
  }
  async readAll(sha: string): Promise<number> {
    let n = 0;
    const walk = async (oid: string): Promise<void> => {
      const { tree } = await iso.readTree({ fs, gitdir: this.gitdir, cache: this.cache, oid });
      for (const e of tree) {
        if (e.type === "tree") await walk(e.oid);
        else n += (await iso.readBlob({ fs, gitdir: this.gitdir, cache: this.cache, oid: e.oid })).blob.byteLength;
      }
    };
    await walk((await iso.readCommit({ fs, gitdir: this.gitdir, cache: this.cache, oid: sha })).commit.tree);
    return n;
  }
}

// ---- one variant, in a child process ----

async function runChild(variant: "cli" | "iso"): Promise<Result> {
  const root = await mkdtemp(path.join(tmpdir(), "plumber-bench-git-"));
  const server = await startGitServer({ root });
  let peak = 0;
  let peakChild = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
    peakChild = Math.max(peakChild, childGitRssKiB() * 1024);
  }, 25);
  const res: Result = { variant, ok: false, steps: 0, fetches: 0, msPerFetch: 0, msPerRead: 0, peakRssMiB: 0, peakChildRssMiB: 0, cacheMiB: 0, packs: 0, steadyRequests: 0 };
  try {
    const t = await TestRepo.create(root, "bench");
    const shas: string[] = [];
    for (let r = 1; r <= 10; r++) shas.push(await t.commit(revFiles(r), `rev ${r}`));
    const http = createGitHttp({ timeoutMs: 60_000 });
    const cacheDir = path.join(root, ".cache");
    const url = server.url("bench");
    const repo = variant === "cli" ? new GitRepo({ url, http, cacheDir }) : new IsoRepo(url, withThinPack(http), path.join(cacheDir, "iso"));
    let fetchMs = 0;
    let readMs = 0;
    const step = async (expectRev: string): Promise<void> => {
      const heads = await repo.listHeads();
      const sha = heads.get("main")!;
      const had = await repo.hasCommit(sha);
      const t0 = performance.now();
      await repo.ensureCommit("main", sha);
      if (!had) {
        fetchMs += performance.now() - t0;
        res.fetches++;
      }
      const t1 = performance.now();
      if (repo instanceof GitRepo) {
        const files = await repo.readFiles(sha, "app", () => true, { maxFileBytes: 4 << 20, maxTotalBytes: 32 << 20, maxFiles: 100 });
        if (!files.find((f) => f.path === "app/cm.yaml")!.content.includes(`rev: "${expectRev}"`)) throw new Error(`wrong tree at step ${res.steps}`);
      } else {
        await repo.readAll(sha);
      }
      readMs += performance.now() - t1;
      res.steps++;
    };
    // Poll every revision as it lands, then move the branch around.
    for (let r = 1; r <= 10; r++) {
      await t.resetBranch("main", shas[r - 1]!);
      await step(String(r));
    }
    const oldSha = shas[2]!;
    const newSha = shas[9]!;
    for (let c = 0; c < CYCLES; c++) {
      await t.resetBranch("main", oldSha);
      await step("3");
      await git(["--git-dir", t.bareDir, "update-ref", `refs/heads/sib${c}`, oldSha]);
      const sib = await t.commit(revFiles(100 + c), `sibling ${c}`, { branch: `sib${c}` });
      await t.resetBranch("main", sib);
      await step(String(100 + c));
      await t.resetBranch("main", newSha);
      await step("10");
    }
    // Steady state: the branch does not move; one listing and a cached ensureCommit per cycle.
    await repo.listHeads();
    server.resetCounts();
    const heads = await repo.listHeads();
    await repo.ensureCommit("main", heads.get("main")!);
    res.steadyRequests = server.requests.total;
    const packDir = path.join(repo.gitdir, "objects", "pack");
    const names = (await readdir(packDir).catch(() => [] as string[])).filter((n) => n.endsWith(".pack"));
    let bytes = 0;
    for (const n of names) bytes += (await stat(path.join(packDir, n))).size;
    res.packs = names.length;
    res.cacheMiB = bytes / 2 ** 20;
    res.msPerFetch = res.fetches ? fetchMs / res.fetches : 0;
    res.msPerRead = readMs / res.steps;
    res.ok = true;
    http.close();
  } catch (e) {
    res.error = e instanceof Error ? e.message.slice(0, 300) : String(e);
  } finally {
    clearInterval(sampler);
    res.peakRssMiB = peak / 2 ** 20;
    res.peakChildRssMiB = peakChild / 2 ** 20;
    await server.stop();
    await rm(root, { recursive: true, force: true });
  }
  return res;
}

// ---- memory cases: what a repo or a server sends must not set plumber's RSS ----


async function runMemCase(kind: string): Promise<{ peakRssMiB: number; outcome: string }> {
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const root = await mkdtemp(path.join(tmpdir(), "plumber-bench-mem-"));
  let outcome: string;
  try {
    const http = createGitHttp({ timeoutMs: 120_000 });
    if (kind.startsWith("blob")) {
      const mib = Number(kind.slice(4));
      const server = await startGitServer({ root });
      const t = await TestRepo.create(root, "mem");
      const sha0 = await t.commit({ "deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n" });
      // Written to disk and committed by git, so this process never holds the blob.
      const big = path.join(t.workDir, "assets", "random.bin");
      fs.mkdirSync(path.dirname(big), { recursive: true });
      const fd = fs.openSync(big, "w");
      for (let i = 0; i < mib; i++) fs.writeSync(fd, randomBytes(1 << 20));
      fs.closeSync(fd);
      await git(["add", "--all"], t.workDir);
      await git(["commit", "--quiet", "--no-verify", "-m", "big"], t.workDir);
      await git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], t.workDir);
      const sha = await t.head();
      if (sha === sha0) throw new Error("big file not committed");
      peak = 0;
      const repo = new GitRepo({ url: server.url("mem"), http, cacheDir: path.join(root, ".cache") });
      const heads = await repo.listHeads();
      await repo.ensureCommit("main", heads.get("main")!);
      const files = await repo.readFiles(sha, "deploy", () => true, { maxFileBytes: 1 << 20, maxTotalBytes: 8 << 20, maxFiles: 100 });
      const whole = await repo.readFiles(sha, "", () => true, { maxFileBytes: 1 << 20, maxTotalBytes: 8 << 20, maxFiles: 100 }).catch((e: Error) => e);
      outcome = `app read ${files.length} file; whole repo: ${whole instanceof Error ? whole.message.replace(/ in commit [0-9a-f]+/, "") : "read"}`;
      await server.stop();
    } else {
      const n = Number(kind.replace(/\D/g, "")) * 1_000_000;
      const v2 = kind.startsWith("refs2");
      const sha = "a".repeat(40);
      const server = createServer((req, res) => {
        req.resume();
        const adv = { "content-type": "application/x-git-upload-pack-advertisement" };
        if (v2 && req.method === "GET") {
          res.writeHead(200, adv).end(Buffer.concat([pkt("version 2\n"), pkt("ls-refs\n"), Buffer.from("0000")]));
          return;
        }
        res.writeHead(200, v2 ? { "content-type": "application/x-git-upload-pack-result" } : adv);
        if (!v2) res.write(Buffer.concat([pkt("# service=git-upload-pack\n"), Buffer.from("0000")]));
        let i = 0;
        const pump = (): void => {
          while (i < n && !res.destroyed) {
            const chunk: Buffer[] = [];
            for (let k = 0; k < 1000 && i < n; k++, i++) chunk.push(pkt(`${sha} refs/${i % 2 ? "pull" : "heads"}/r${i}\n`));
            if (!res.write(Buffer.concat(chunk))) return void res.once("drain", pump);
          }
          res.end("0000");
        };
        pump();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/r.git`;
      peak = 0;
      const repo = new GitRepo({ url, http, cacheDir: path.join(root, ".cache") });
      const r = await repo.listHeads().then((h) => `${h.size} branches`, (e: Error) => e.message);
      outcome = r;
      server.closeAllConnections();
      server.close();
    }
    http.close();
  } finally {
    clearInterval(sampler);
    await rm(root, { recursive: true, force: true });
  }
  return { peakRssMiB: peak / 2 ** 20, outcome };
}

function spawnJson<T>(args: string[]): Promise<T | undefined> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [self, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_S * 1000);
    child.on("close", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "") as T);
      } catch {
        resolve(undefined);
      }
    });
  });
}

export async function benchGitMemory(row: (k: string, v: string) => void): Promise<void> {
  for (const kind of ["blob50", "blob150", "refs1m-v1", "refs3m-v1", "refs1m-v2", "refs3m-v2"]) {
    const r = await spawnJson<{ peakRssMiB: number; outcome: string }>([CHILD_FLAG, "mem", kind]);
    const what = kind.startsWith("blob")
      ? `a ${kind.slice(4)} MiB random file elsewhere in the repo`
      : `a server sending ${kind.slice(4, 6).toUpperCase()} refs (protocol ${kind.slice(-2)}, prefix ignored)`;
    row(`git memory, ${what}: peak RSS`, r ? `${r.peakRssMiB.toFixed(0)} MiB (${r.outcome})` : "FAILED");
  }
}

function spawnVariant(variant: "cli" | "iso"): Promise<Result> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--max-old-space-size=2048", self, CHILD_FLAG, variant], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    let peak = 0;
    const watch = setInterval(() => {
      try {
        const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
        peak = Math.max(peak, rss);
      } catch {
        // exited
      }
    }, 100);
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_S * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearInterval(watch);
      const line = out.trim().split("\n").at(-1) ?? "";
      try {
        resolve(JSON.parse(line) as Result);
      } catch {
        const why = signal === "SIGKILL" ? `killed after ${TIMEOUT_S} s (no progress)` : `exited ${code ?? signal} (heap limit?)`;
        resolve({ variant, ok: false, error: why, steps: 0, fetches: 0, msPerFetch: 0, msPerRead: 0, peakRssMiB: peak / 2 ** 20, peakChildRssMiB: 0, cacheMiB: 0, packs: 0, steadyRequests: 0 });
      }
    });
  });
}

export async function benchGit(row: (k: string, v: string) => void): Promise<void> {
  const wanted = (process.env.BENCH_GIT_VARIANTS ?? "cli,iso").split(",");
  for (const variant of (["cli", "iso"] as const).filter((v) => wanted.includes(v))) {
    const r = await spawnVariant(variant);
    const name = variant === "cli" ? "git CLI (plumber)" : "isomorphic-git (former)";
    const prefix = `git cache, ${CYCLES}× old→new→old→sibling→new, ${name}`;
    if (!r.ok) {
      row(`${prefix}: result`, `FAILED: ${r.error ?? "?"} (peak RSS ${r.peakRssMiB.toFixed(0)} MiB)`);
      continue;
    }
    row(`${prefix}: peak RSS plumber process`, `${r.peakRssMiB.toFixed(0)} MiB`);
    row(`${prefix}: peak RSS git children`, `${r.peakChildRssMiB.toFixed(0)} MiB`);
    row(`${prefix}: time per fetch`, `${r.msPerFetch.toFixed(0)} ms (${r.fetches} fetches in ${r.steps} polls)`);
    row(`${prefix}: time per tree read (3 MiB)`, `${r.msPerRead.toFixed(0)} ms`);
    row(`${prefix}: cache after`, `${r.cacheMiB.toFixed(1)} MiB in ${r.packs} packs`);
    row(`${prefix}: steady state git requests per cycle`, String(r.steadyRequests));
  }
}

if (process.argv[2] === CHILD_FLAG && process.argv[3] === "mem") {
  runMemCase(process.argv[4] ?? "").then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
} else if (process.argv[2] === CHILD_FLAG) {
  const variant = process.argv[3] === "iso" ? "iso" : "cli";
  runChild(variant).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const row = (k: string, v: string) => process.stdout.write(`${k}: ${v}\n`);
  void (process.argv[2] === "memory" ? benchGitMemory(row) : benchGit(row).then(() => benchGitMemory(row)));
}
