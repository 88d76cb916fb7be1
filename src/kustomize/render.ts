// Kustomize rendering: an app whose path holds a kustomization file is built with the real
// kustomize binary, offline and without plugins or exec functions, from the tree of the commit
// materialized into a temporary directory (no checkout, no network).
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { posix } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { GitRepo, ReadLimits, RepoFile } from "../git/repo.js";
import { parseManifests } from "../manifests/parse.js";
import { readManifests } from "../manifests/read.js";
import type { FileProblem, Manifest } from "../types.js";
import { FileProblemError } from "../types.js";

/** The kustomization file names kustomize itself looks for, in its order. */
export const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"] as const;

export interface KustomizeOptions {
  /** The kustomize binary: a path, or a name looked up in PATH. Default "kustomize". */
  binary: string;
  /** Let resources/bases/components name remote (URL, git) bases. Default false. */
  allowRemoteBases: boolean;
  /** Kill kustomize after this long. Default 60 s. */
  timeoutMs: number;
  /** Largest output accepted, bytes. Default 32 MiB. */
  maxOutputBytes: number;
}

export const DEFAULT_KUSTOMIZE: KustomizeOptions = {
  binary: "kustomize",
  allowRemoteBases: false,
  timeoutMs: 60_000,
  maxOutputBytes: 32 * 1024 * 1024,
};

/** Limits of the tree materialized for kustomize (the whole repo at the commit). */
export const KUSTOMIZE_READ_LIMITS: ReadLimits = { maxFileBytes: 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024, maxFiles: 20_000 };

/** Counters, for tests and metrics: how many times kustomize ran, and cache hits. */
export const kustomizeStats = { runs: 0, cacheHits: 0 };

/** Rendered output per (binary, commit, path): a commit never changes, so neither does its build. */
const cache = new Map<string, string>();
const CACHE_ENTRIES = 32;

/** The kustomization file directly in `dir` of the commit, or undefined when there is none. */
export async function findKustomization(repo: GitRepo, sha: string, dir: string): Promise<string | undefined> {
  const prefix = dir === "." || dir === "" ? "" : `${dir}/`;
  const names = new Set(KUSTOMIZATION_FILES.map((n) => prefix + n));
  const files = await repo.readFiles(sha, dir === "" ? "." : dir, (p) => names.has(p), { maxFileBytes: 1024 * 1024, maxTotalBytes: 4 * 1024 * 1024, maxFiles: 3 });
  for (const n of KUSTOMIZATION_FILES) if (files.some((f) => f.path === prefix + n)) return prefix + n;
  return undefined;
}

/**
 * The manifests of an app at a commit: rendered with kustomize when `path` holds a kustomization
 * file, else every manifest file under it (readManifests). The commit must be available locally.
 */
export async function renderApp(repo: GitRepo, sha: string, path: string, options: Partial<KustomizeOptions> = {}): Promise<Manifest[]> {
  const kfile = await findKustomization(repo, sha, path);
  if (kfile) return renderKustomize(repo, sha, path, kfile, options);
  return readManifests(repo, sha, path);
}

/** Does a kustomization entry name something remote (a URL, a git repo)? */
export function isRemoteEntry(entry: string): boolean {
  const e = entry.trim();
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(e) || e.startsWith("git@") || e.startsWith("github.com/") || e.includes("?ref=") || /^[^/]+@[^/]+:/.test(e);
}

/**
 * Checks the kustomization at `file` and every local base it names, recursively: an entry of
 * resources, bases or components that names a remote base is a problem (file:line, the entry).
 */
export function checkRemoteBases(files: Map<string, string>, file: string): FileProblem[] {
  const problems: FileProblem[] = [];
  const seen = new Set<string>();
  const visit = (kfile: string): void => {
    if (seen.has(kfile)) return;
    seen.add(kfile);
    const text = files.get(kfile);
    if (text === undefined) return;
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc });
    if (doc.errors.length) {
      const e = doc.errors[0];
      problems.push({ file: kfile, line: e ? lc.linePos(e.pos[0]).line : 1, message: `cannot parse kustomization: ${e?.message ?? "invalid YAML"}` });
      return;
    }
    if (!isMap(doc.contents)) return;
    const dir = posix.dirname(kfile);
    for (const field of ["resources", "bases", "components"]) {
      const seq = doc.contents.get(field, true);
      if (!isSeq(seq)) continue;
      for (const item of seq.items) {
        if (!isScalar(item) || typeof item.value !== "string") continue;
        const entry = item.value;
        const line = item.range ? lc.linePos(item.range[0]).line : 1;
        if (isRemoteEntry(entry)) {
          problems.push({ file: kfile, line, field, message: `remote base "${entry}" is refused (plumber renders offline; set kustomize.allowRemoteBases: true to allow it)` });
          continue;
        }
        const target = posix.normalize(posix.join(dir, entry));
        for (const n of KUSTOMIZATION_FILES) {
          const k = target === "." ? n : `${target}/${n}`;
          if (files.has(k)) {
            visit(k);
            break;
          }
        }
      }
    }
  };
  visit(file);
  return problems;
}

/**
 * Renders the kustomization in `dir` of commit `sha` (which must be available locally).
 * Problems with the kustomization or kustomize's own errors throw FileProblemError naming the
 * kustomization file: nothing is applied from such a revision.
 */
export async function renderKustomize(repo: GitRepo, sha: string, dir: string, kfile: string, options: Partial<KustomizeOptions> = {}): Promise<Manifest[]> {
  const opts = { ...DEFAULT_KUSTOMIZE, ...options };
  const key = `${opts.binary}\0${opts.allowRemoteBases}\0${sha}\0${dir}`;
  let out = cache.get(key);
  if (out !== undefined) {
    kustomizeStats.cacheHits++;
  } else {
    const files = await repo.readFiles(sha, ".", () => true, KUSTOMIZE_READ_LIMITS);
    if (!opts.allowRemoteBases) {
      const problems = checkRemoteBases(new Map(files.map((f) => [f.path, f.content])), kfile);
      if (problems.length) throw new FileProblemError(problems);
    }
    out = await build(files, dir, kfile, opts);
    cache.set(key, out);
    while (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  }
  return parseManifests([{ path: kfile, content: out }]);
}

async function build(files: RepoFile[], dir: string, kfile: string, opts: KustomizeOptions): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "plumber-kustomize-"));
  try {
    const tree = join(root, "tree");
    for (const f of files) {
      const target = join(tree, ...f.path.split("/"));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, f.content);
    }
    await mkdir(join(tree, ...(dir === "." ? [] : dir.split("/"))), { recursive: true });
    kustomizeStats.runs++;
    return await run(opts, root, tree, join(tree, ...(dir === "." ? [] : dir.split("/"))), kfile);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function run(opts: KustomizeOptions, home: string, tree: string, target: string, kfile: string): Promise<string> {
  // No proxies, no credentials, no plugins: only PATH (to find the binary) and a throwaway HOME.
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, XDG_CONFIG_HOME: join(home, ".config"), KUSTOMIZE_PLUGIN_HOME: join(home, "no-plugins") };
  const args = ["build", "--load-restrictor", "LoadRestrictionsRootOnly", target];
  return new Promise((resolve, reject) => {
    const child = spawn(opts.binary, args, { cwd: target, env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let failure: Error | undefined;
    const kill = (e: Error): void => {
      failure ??= e;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill(new FileProblemError([{ file: kfile, line: 1, message: `kustomize build timed out after ${opts.timeoutMs} ms` }])), opts.timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      outBytes += b.byteLength;
      if (outBytes > opts.maxOutputBytes) kill(new FileProblemError([{ file: kfile, line: 1, message: `kustomize build output exceeds ${opts.maxOutputBytes} bytes` }]));
      else out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      if (err.length < 8192) err += b.toString("utf8");
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === "ENOENT" ? new Error(`kustomize binary "${opts.binary}" not found (set kustomize.binary)`) : e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (failure) return reject(failure);
      if (code !== 0) {
        const msg = err.trim().replaceAll(tree + "/", "").replaceAll(tree, ".").split("\n").slice(0, 10).join("\n");
        return reject(new FileProblemError([{ file: kfile, line: 1, message: `kustomize build failed: ${msg || `exit code ${code}`}` }]));
      }
      resolve(Buffer.concat(out).toString("utf8"));
    });
  });
}
