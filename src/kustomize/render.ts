// Kustomize rendering: an app whose path holds a kustomization file is built with the real
// kustomize binary from the kustomization's closure (closure.ts: only the files the build reads)
// materialised into a temporary directory, with no network (offline.ts), no plugins, no exec.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { GitRepo } from "../git/repo.js";
import type { Logger } from "../log.js";
import { parseManifests } from "../manifests/parse.js";
import { readManifests, type ManifestCache } from "../manifests/read.js";
import type { Manifest } from "../types.js";
import { FileProblemError } from "../types.js";
import { computeClosure, DEFAULT_CLOSURE_LIMITS, KUSTOMIZATION_FILES, type Closure, type ClosureLimits, type TreeSource } from "./closure.js";
import { BUILD_FLAGS, detectIsolation, resolveExecutable, runIsolated, type Isolation } from "./offline.js";

export type { TreeSource } from "./closure.js";

export interface KustomizeOptions {
  /** The kustomize binary: a path, or a name looked up in PATH. Default "kustomize". */
  binary: string;
  /** Let resources/bases/components name remote (URL, git) bases; kustomize then runs with network. Default false. */
  allowRemoteBases: boolean;
  /** Kill kustomize after this long. Default 60 s. */
  timeoutMs: number;
  /** Largest output accepted, bytes. Default 32 MiB. */
  maxOutputBytes: number;
  /** Bounds of the closure read from git. */
  limits: ClosureLimits;
}

export const DEFAULT_KUSTOMIZE: KustomizeOptions = {
  binary: "kustomize",
  allowRemoteBases: false,
  timeoutMs: 60_000,
  maxOutputBytes: 32 * 1024 * 1024,
  limits: DEFAULT_CLOSURE_LIMITS,
};

/** Counters, for tests, metrics and the bench: kustomize runs, cache hits, size of the last closure. */
export const kustomizeStats = { runs: 0, cacheHits: 0, lastClosureFiles: 0, lastClosureBytes: 0 };

/** Rendered output per (binary, remote policy, commit, path): a commit never changes, so neither does its build. */
const cache = new Map<string, string>();
const CACHE_ENTRIES = 32;

/** The kustomization file directly in `dir` of the commit, or undefined when there is none. */
export async function findKustomization(repo: Pick<TreeSource, "listDir">, sha: string, dir: string): Promise<string | undefined> {
  const entries = await repo.listDir(sha, dir === "." ? "" : dir);
  const prefix = dir === "." || dir === "" ? "" : `${dir.replace(/\/+$/, "")}/`;
  for (const n of KUSTOMIZATION_FILES) if (entries.some((e) => e.name === n)) return prefix + n;
  return undefined;
}

/**
 * The manifests of an app at a commit: rendered with kustomize when `path` holds a kustomization
 * file, else every manifest file under it (readManifests). The commit must be available locally.
 */
export async function renderApp(repo: GitRepo, sha: string, path: string, options: Partial<KustomizeOptions> = {}, cache?: ManifestCache): Promise<Manifest[]> {
  const kfile = await findKustomization(repo, sha, path);
  if (kfile) return renderKustomize(repo, sha, path, kfile, options);
  return readManifests(repo, sha, path, undefined, undefined, cache);
}

/** Says, at startup, how kustomize is kept offline here (or that it is not). */
export async function logKustomizeIsolation(options: Partial<KustomizeOptions>, log: Logger): Promise<Isolation> {
  const opts = { ...DEFAULT_KUSTOMIZE, ...options };
  const iso = await detectIsolation(opts.binary, opts.allowRemoteBases);
  const fields = { kustomize: { binary: opts.binary, isolation: iso.mode } };
  if (!resolveExecutable(opts.binary)) log.info(fields, `kustomize binary "${opts.binary}" not found: apps whose path holds a kustomization file cannot be rendered`);
  else if (iso.mode === "netns" || iso.mode === "userns-netns") log.info(fields, iso.description);
  else log.warn(fields, iso.description);
  return iso;
}

/**
 * Renders the kustomization in `dir` of commit `sha` (which must be available locally).
 * Problems with the kustomization or kustomize's own errors throw FileProblemError naming the
 * kustomization file (and line, for what plumber checks itself): nothing is applied from such a
 * revision.
 */
export async function renderKustomize(repo: TreeSource, sha: string, dir: string, kfile: string, options: Partial<KustomizeOptions> = {}): Promise<Manifest[]> {
  return parseManifests([{ path: kfile, content: await buildKustomization(repo, sha, dir, kfile, options) }]);
}

/** kustomize's output for the kustomization in `dir` of commit `sha`, from the cache when built before. */
export async function buildKustomization(repo: TreeSource, sha: string, dir: string, kfile: string, options: Partial<KustomizeOptions> = {}): Promise<string> {
  const opts = { ...DEFAULT_KUSTOMIZE, ...options };
  const key = `${opts.binary}\0${opts.allowRemoteBases}\0${sha}\0${dir}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    kustomizeStats.cacheHits++;
    return hit;
  }
  const closure = await computeClosure(repo, sha, dir, { limits: opts.limits, allowRemoteBases: opts.allowRemoteBases });
  kustomizeStats.lastClosureFiles = closure.files.size;
  kustomizeStats.lastClosureBytes = closure.bytes;
  const out = await buildClosure(closure, dir, kfile, opts);
  cache.set(key, out);
  while (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  return out;
}

/** Writes the closure into a fresh temporary tree and runs `kustomize build` on `dir` in it. */
export async function buildClosure(closure: Closure, dir: string, kfile: string, options: Partial<KustomizeOptions> = {}): Promise<string> {
  const opts = { ...DEFAULT_KUSTOMIZE, ...options };
  const root = await mkdtemp(join(tmpdir(), "plumber-kustomize-"));
  try {
    const tree = join(root, "tree");
    const dirs = new Set<string>();
    for (const path of closure.files.keys()) dirs.add(dirname(join(tree, ...path.split("/"))));
    for (const d of dirs) await mkdir(d, { recursive: true });
    for (const [path, bytes] of closure.files) await writeFile(join(tree, ...path.split("/")), bytes);
    const target = join(tree, ...(dir === "." || dir === "" ? [] : dir.split("/")));
    await mkdir(target, { recursive: true });
    const home = join(root, "home");
    await mkdir(home);
    return await build(opts, home, tree, target, kfile);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function build(opts: KustomizeOptions, home: string, tree: string, target: string, kfile: string): Promise<string> {
  const isolation = await detectIsolation(opts.binary, opts.allowRemoteBases);
  kustomizeStats.runs++;
  const res = await runIsolated({ binary: opts.binary, args: ["build", ...BUILD_FLAGS, target], cwd: target, home, isolation, timeoutMs: opts.timeoutMs, maxOutputBytes: opts.maxOutputBytes });
  const fail = (message: string) => new FileProblemError([{ file: kfile, line: 1, message }]);
  switch (res.kind) {
    case "ok":
      return res.stdout.toString("utf8");
    case "not-found":
      throw new Error(`kustomize binary "${opts.binary}" not found (set kustomize.binary)`);
    case "timeout":
      throw fail(`kustomize build timed out after ${opts.timeoutMs} ms`);
    case "too-large":
      throw fail(`kustomize build output exceeds ${opts.maxOutputBytes} bytes`);
    case "failed": {
      const msg = res.stderr.trim().replaceAll(tree + "/", "").replaceAll(tree, ".").split("\n").slice(0, 10).join("\n");
      throw fail(`kustomize build failed: ${msg || `exit code ${res.code}`}`);
    }
  }
}
