// A remote git repository mirrored into a bare, shallow gitdir on local disk, driven by the git CLI.
// - Branch listing: protocol v2 ls-refs with ref-prefix refs/heads/, in-process, bounded (refs.ts).
// - Fetch: `git fetch --depth=1 <url> +refs/heads/B:refs/heads/B` (never needs the remote HEAD);
//   git completes thin packs itself (index-pack --fix-thin), so no pack ever holds a delta whose
//   base lives in another pack, and every pack is verified before it is renamed into place.
// - Reads: one `git cat-file --batch-command` child; sizes come from object headers, so limits are
//   enforced before any content is read, and plumber holds at most one file's bytes at a time.
// - The cache is disposable: a corrupt gitdir or a read that times out throws it away, and the next
//   ensureCommit clones afresh into a temp dir that is swapped in only when complete.

import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import tls from "node:tls";
import { GitCliError, gitEnv, lastLines, runGit } from "./cli.js";
import { GitSourceError } from "./errors.js";
import { transportSettingsOf, type HttpClient } from "./http.js";
import { commitTree, ObjectReader, ObjectReadError, parseTree, type RawTreeEntry } from "./objects.js";
import { DEFAULT_REF_LIMITS, listBranches, type RefLimits, type V2Capabilities } from "./refs.js";
import { redactUrl, validateRepoUrl } from "./url.js";

/** git HOME directories made in this process (one per cache dir). */
const madeHomes = new Set<string>();

export { GitSourceError } from "./errors.js";

export interface ReadLimits {
  /** Largest single file, bytes. */
  maxFileBytes: number;
  /** Sum of all returned files, bytes. */
  maxTotalBytes: number;
  /** Number of returned files (files that pass the filter). */
  maxFiles: number;
}

export interface RepoFile {
  /** Relative to the repository root, "/"-separated. */
  path: string;
  content: string;
  /** The blob's object id: equal ids, equal content (what a parse cache keys on). */
  oid?: string;
}

/** A file readFilesExcept did not read: the caller said it has the blob `oid` already. */
export interface KnownFile {
  path: string;
  oid: string;
  known: true;
}

export interface TreeEntryInfo {
  name: string;
  /** From the repository root, "/"-separated. */
  path: string;
  type: "blob" | "tree" | "symlink" | "submodule";
}

export interface GitRepoOptions {
  /** http(s) URL; checked with validateRepoUrl. */
  url: string;
  /** HTTP client for the ref listing, normally createGitHttp(...); its auth, CA and timeout are
   *  also what the git CLI children get (through the environment, never the command line). */
  http: HttpClient;
  /** Shared cache directory; this repository's bare gitdir is <cacheDir>/<repoCacheKey(url)>. */
  cacheDir: string;
  /** Repack into one pack (dropping objects no branch reaches) once objects/pack holds this many. Default 16. */
  maxPacks?: number;
  /** Ref listing caps. Default 8 MiB and 50,000 branches. */
  refLimits?: Partial<RefLimits>;
  /** Largest pack one fetch may write, bytes; more kills the fetch ("limit"). Default 1 GiB. */
  maxFetchBytes?: number;
  /** Deadline of one fetch (git child killed after it). Default max(10 × the HTTP timeout, 60 s). */
  fetchTimeoutMs?: number;
  /** Deadline of one object read; on expiry the cache is thrown away. Default 30 s. */
  readTimeoutMs?: number;
  /** Largest tree object read, bytes. Default 16 MiB (~400k entries). */
  maxTreeBytes?: number;
  /** Ignored (thin packs are always asked for: git completes them on arrival). Kept for old callers. */
  thinPack?: boolean;
  /** Name of the gitdir under cacheDir. Default repoCacheKey(url); historyMirror() adds ".history". */
  gitdirName?: string;
}

export const DEFAULT_MAX_PACKS = 16;
export const DEFAULT_MAX_FETCH_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_READ_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_TREE_BYTES = 16 * 1024 * 1024;
/** Largest commit object read whole (readCommitObject); signed commits are a few KiB. */
export const MAX_COMMIT_OBJECT_BYTES = 1024 * 1024;

/** First 16 hex digits of sha256 of the normalized URL: the gitdir's name under cacheDir. */
export function repoCacheKey(url: string): string {
  return createHash("sha256").update(validateRepoUrl(url)).digest("hex").slice(0, 16);
}

const SHA_RE = /^[0-9a-f]{40}$/;

/** git check-ref-format rules for a branch name (the part after refs/heads/). */
export function isValidBranchName(name: string): boolean {
  if (name === "" || name === "@" || name.length > 255) return false;
  // eslint-disable-next-line no-control-regex -- git check-ref-format refuses control characters
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)) return false;
  if (name.includes("..") || name.includes("@{") || name.includes("//")) return false;
  if (name.startsWith("/") || name.endsWith("/") || name.endsWith(".")) return false;
  for (const part of name.split("/")) {
    if (part.startsWith(".") || part.endsWith(".lock")) return false;
  }
  return true;
}

/**
 * Checks a directory inside the repository and returns it normalized: "" for the root, else
 * "a/b" (no leading/trailing slash). Refuses absolute paths, backslashes, NUL and any ".." segment.
 */
export function normalizeRepoDir(dir: string): string {
  if (typeof dir !== "string") throw new GitSourceError("path must be a string", "invalid-argument", false);
  if (dir.includes("\u0000") || dir.includes("\\")) {
    throw new GitSourceError(`path ${JSON.stringify(dir)} contains NUL or a backslash`, "invalid-argument", false);
  }
  if (dir.startsWith("/")) {
    throw new GitSourceError(
      `path ${JSON.stringify(dir)} is absolute; give a path relative to the repository root`,
      "invalid-argument",
      false,
    );
  }
  if (dir.split("/").includes("..")) {
    throw new GitSourceError(`path ${JSON.stringify(dir)} escapes the repository (contains "..")`, "invalid-argument", false);
  }
  const norm = path.posix.normalize(dir === "" ? "." : dir).replace(/\/+$/, "");
  if (norm === "." || norm === "") return "";
  if (norm.startsWith("/") || norm.split("/").includes("..")) {
    throw new GitSourceError(`path ${JSON.stringify(dir)} escapes the repository`, "invalid-argument", false);
  }
  return norm;
}


const utf8 = new TextDecoder("utf-8", { fatal: true });

interface GitdirState {
  queue: Promise<unknown>;
  reader: ObjectReader | undefined;
  /** v2 capability advertisement of the remote (cached: steady-state listing is one POST). */
  caps: V2Capabilities | undefined;
}
const gitdirStates = new Map<string, GitdirState>();

interface TreeEntry extends RawTreeEntry {
  type: TreeEntryInfo["type"];
}

export class GitRepo {
  readonly url: string;
  readonly gitdir: string;
  private readonly http: HttpClient;
  private readonly opts: GitRepoOptions;
  private readonly cacheDir: string;
  private readonly maxPacks: number;
  private readonly refLimits: RefLimits;
  private readonly maxFetchBytes: number;
  private readonly fetchTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly maxTreeBytes: number;
  private readonly httpTimeoutMs: number;
  private readonly authorization: string | undefined;
  private readonly caPem: string | undefined;
  private caFile: string | undefined;
  /** Lock, reader and capabilities, shared by every GitRepo on the same gitdir in this process. */
  private readonly state: GitdirState;

  constructor(opts: GitRepoOptions) {
    this.url = validateRepoUrl(opts.url);
    this.opts = opts;
    this.http = opts.http;
    this.cacheDir = opts.cacheDir;
    this.gitdir = path.join(opts.cacheDir, opts.gitdirName ?? repoCacheKey(this.url));
    this.maxPacks = opts.maxPacks ?? DEFAULT_MAX_PACKS;
    this.refLimits = { ...DEFAULT_REF_LIMITS, ...opts.refLimits };
    this.maxFetchBytes = opts.maxFetchBytes ?? DEFAULT_MAX_FETCH_BYTES;
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    this.maxTreeBytes = opts.maxTreeBytes ?? DEFAULT_MAX_TREE_BYTES;
    const t = transportSettingsOf(opts.http);
    this.httpTimeoutMs = t?.timeoutMs ?? 30_000;
    this.authorization = t?.authorization;
    this.caPem = t?.caPem;
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? Math.max(10 * this.httpTimeoutMs, 60_000);
    let st = gitdirStates.get(this.gitdir);
    if (!st) {
      st = { queue: Promise.resolve(), reader: undefined, caps: undefined };
      gitdirStates.set(this.gitdir, st);
    }
    this.state = st;
  }

  /** The URL without credentials, for messages. */
  /** Ends the long-lived cat-file reader, so nothing of this repo keeps the process alive. */
  close(): void {
    this.closeReader();
  }

  get displayUrl(): string {
    return redactUrl(this.url);
  }

  /**
   * Branch name → head commit. Protocol v2 ls-refs limited to refs/heads/ (one POST once the
   * server's capabilities are known; GET info/refs + POST the first time), or the v1 advertisement
   * from servers without v2. Over refLimits → GitSourceError "limit".
   */
  async listHeads(): Promise<Map<string, string>> {
    const r = await listBranches(this.http, this.url, this.displayUrl, this.refLimits, this.state.caps);
    this.state.caps = r.caps;
    return r.heads;
  }

  /**
   * Makes commit `sha` (the head of `branch` as last listed) available locally.
   * No network when it is already cached. Otherwise fetches the branch at depth 1 (a fresh clone
   * into a temp dir when there is no cache yet). If the branch moved on and `sha` is not what the
   * server sent, throws a retryable GitSourceError with code "moved".
   */
  ensureCommit(branch: string, sha: string): Promise<void> {
    if (!isValidBranchName(branch)) {
      return Promise.reject(new GitSourceError(`invalid branch name ${JSON.stringify(branch)}`, "invalid-argument", false));
    }
    if (!SHA_RE.test(sha)) {
      return Promise.reject(new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false));
    }
    return this.locked(async () => {
      if (await this.hasCommitUnlocked(sha)) return;
      this.closeReader();
      if (!(await isGitdir(this.gitdir))) {
        await this.cloneFresh(branch);
      } else {
        await this.fetchBranch(this.gitdir, branch);
        if ((await this.packCountUnlocked()) >= this.maxPacks) await this.compact();
      }
      if (!(await this.hasCommitUnlocked(sha))) {
        const got = await this.localRef(branch);
        throw new GitSourceError(
          `branch ${branch} of ${this.displayUrl} moved: expected ${sha}, the server sent ${got || "nothing"}; list the heads again`,
          "moved",
          true,
        );
      }
    });
  }

  /** Whether the commit (and, by construction, its whole tree) is in the local cache. */
  hasCommit(sha: string): Promise<boolean> {
    return this.locked(() => this.hasCommitUnlocked(sha));
  }

  /**
   * The same remote with the same settings, mirrored into `<gitdir>.history`: where commits older
   * than the branch heads are fetched (ensureHistory), so the heads' cache stays depth 1.
   */
  historyMirror(): GitRepo {
    return new GitRepo({ ...this.opts, gitdirName: `${path.basename(this.gitdir)}.history` });
  }

  /**
   * Makes commit `sha`, somewhere in the history of `branch`, available locally: fetches the
   * branch at each depth in turn (e.g. [64, 1024]) until the commit is there. No network when it
   * is already cached. Not within the last depths.at(-1) commits → GitSourceError "missing-commit".
   * Deepens this gitdir: call it on historyMirror(), not on the heads' cache.
   */
  ensureHistory(branch: string, sha: string, depths: readonly number[]): Promise<void> {
    if (!isValidBranchName(branch)) {
      return Promise.reject(new GitSourceError(`invalid branch name ${JSON.stringify(branch)}`, "invalid-argument", false));
    }
    if (!SHA_RE.test(sha)) {
      return Promise.reject(new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false));
    }
    if (depths.length === 0 || depths.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      return Promise.reject(new GitSourceError(`invalid history depths ${JSON.stringify(depths)}`, "invalid-argument", false));
    }
    return this.locked(async () => {
      if (await this.hasCommitUnlocked(sha)) return;
      this.closeReader();
      for (const depth of depths) {
        if (!(await isGitdir(this.gitdir))) await this.cloneFresh(branch, depth);
        else await this.fetchBranch(this.gitdir, branch, depth);
        if ((await this.packCountUnlocked()) >= this.maxPacks) await this.compact();
        if (await this.hasCommitUnlocked(sha)) return;
      }
      throw new GitSourceError(`commit ${sha} is not among the last ${depths.at(-1)} commits of branch ${branch}`, "missing-commit", false);
    });
  }

  /**
   * The raw bytes of commit object `sha` (headers, gpgsig included, and message), as git stores
   * them: what a signature check needs. Not cached → "missing-commit"; over 1 MiB → "limit".
   */
  readCommitObject(sha: string): Promise<Buffer> {
    try {
      checkSha(sha);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.reading(async () => {
      const info = (await isGitdir(this.gitdir)) ? await this.reader().info(sha) : undefined;
      if (!info || info.type !== "commit") {
        throw new GitSourceError(`commit ${sha} of ${this.displayUrl} is not in the local cache`, "missing-commit", false);
      }
      if (info.size > MAX_COMMIT_OBJECT_BYTES) {
        throw new GitSourceError(`commit ${sha} is ${info.size} bytes, over the limit of ${MAX_COMMIT_OBJECT_BYTES} bytes`, "limit", false);
      }
      return this.objectContent(sha, "commit", "", sha);
    });
  }

  /** Deletes the local gitdir; the next ensureCommit clones afresh. */
  reset(): Promise<void> {
    return this.locked(() => this.discardUnlocked());
  }

  /** Number of packfiles in the gitdir (0 when it does not exist yet). */
  packCount(): Promise<number> {
    return this.locked(() => this.packCountUnlocked());
  }

  /**
   * The files under `dir` in commit `sha` that pass `filter` (given the repo-root-relative path),
   * read from git objects without a checkout. Sorted by path.
   * Refuses symlinks and submodules anywhere under `dir`, a `dir` that escapes the repository,
   * a missing `dir`, non-UTF-8 files, and anything over `limits` (sizes checked before reading).
   */
  readFiles(sha: string, dir: string, filter: (path: string) => boolean, limits: ReadLimits): Promise<RepoFile[]> {
    return this.readFilesExcept(sha, dir, filter, limits, () => false) as Promise<RepoFile[]>;
  }

  /**
   * readFiles, except that a file `known(path, oid)` says the caller already has (a parse cache
   * keyed by blob id) comes back as a KnownFile, its content never read: a commit that changes
   * one file of 200 reads one blob. Limits still count every file.
   */
  readFilesExcept(sha: string, dir: string, filter: (path: string) => boolean, limits: ReadLimits, known: (path: string, oid: string) => boolean): Promise<(RepoFile | KnownFile)[]> {
    let norm: string;
    try {
      norm = normalizeRepoDir(dir);
      checkSha(sha);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.reading(async () => {
      const shown = norm === "" ? "/" : norm;
      // Walk order is the order the checks run in (the first problem met is the one reported),
      // a tree's problem cutting the walk short where it is met.
      const found: ({ path: string; oid: string } | { problem: GitSourceError })[] = [];
      const walk = async (oid: string, prefix: string): Promise<void> => {
        let entries: TreeEntry[];
        try {
          entries = await this.readTree(oid, prefix, sha);
        } catch (e) {
          if (!(e instanceof GitSourceError) || e.code === "cache") throw e;
          found.push({ problem: e });
          return;
        }
        for (const e of entries) {
          const full = prefix === "" ? e.name : `${prefix}/${e.name}`;
          if (e.type === "symlink" || e.type === "submodule") {
            found.push({ problem: new GitSourceError(`${full} in commit ${sha} is a ${e.type}; ${e.type}s are not supported`, "unsupported-entry", false) });
            return;
          }
          if (e.type === "tree") {
            await walk(e.oid, full);
            if ("problem" in (found.at(-1) ?? {})) return;
            continue;
          }
          if (filter(full)) found.push({ path: full, oid: e.oid });
        }
      };
      await walk(await this.resolveDir(sha, norm), norm);
      // Headers of every file at once (the reader pipelines them), then the limits in walk order.
      const files = found.filter((f): f is { path: string; oid: string } => "oid" in f).slice(0, limits.maxFiles + 1);
      const sizes = new Map<string, number>();
      await Promise.all(files.map(async (f) => sizes.set(f.oid, await this.objectSize(f.oid, "blob", f.path, sha))));
      const within: { path: string; oid: string }[] = [];
      let problem: GitSourceError | undefined;
      let total = 0;
      for (const f of found) {
        if ("problem" in f) {
          problem = f.problem;
          break;
        }
        if (within.length + 1 > limits.maxFiles) {
          problem = new GitSourceError(`${f.path} in commit ${sha}: more than ${limits.maxFiles} files under ${shown}`, "limit", false);
          break;
        }
        const size = sizes.get(f.oid) as number;
        if (size > limits.maxFileBytes) {
          problem = new GitSourceError(`${f.path} in commit ${sha} is ${size} bytes, over the limit of ${limits.maxFileBytes} bytes per file`, "limit", false);
          break;
        }
        total += size;
        if (total > limits.maxTotalBytes) {
          problem = new GitSourceError(`${f.path} in commit ${sha}: files under ${shown} total more than ${limits.maxTotalBytes} bytes`, "limit", false);
          break;
        }
        within.push(f);
      }
      // Only what passed the limits is read; a file before the first problem that is not UTF-8 is reported first, as it was met first.
      const read = await Promise.all(
        within.map(async (f): Promise<RepoFile | KnownFile | { invalid: string }> => {
          if (known(f.path, f.oid)) return { path: f.path, oid: f.oid, known: true };
          const blob = await this.objectContent(f.oid, "blob", f.path, sha);
          try {
            return { path: f.path, content: utf8.decode(blob), oid: f.oid };
          } catch {
            return { invalid: f.path };
          }
        }),
      );
      const out: (RepoFile | KnownFile)[] = [];
      for (const f of read) {
        if ("invalid" in f) throw new GitSourceError(`${f.invalid} in commit ${sha} is not valid UTF-8`, "limit", false);
        out.push(f);
      }
      if (problem) throw problem;
      out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return out;
    });
  }

  /**
   * For each of `dirs`, its tree id in commit `sha` and the names directly in it, or undefined when
   * the commit is not cached or the dir is not a directory there: equal ids, equal files under it.
   * One read of each tree on the way, however many dirs share it.
   */
  treesOf(sha: string, dirs: string[]): Promise<Map<string, { oid: string; names: string[] } | undefined>> {
    let norms: string[];
    try {
      norms = dirs.map(normalizeRepoDir);
      checkSha(sha);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.reading(async () => {
      const out = new Map<string, { oid: string; names: string[] } | undefined>();
      const info = (await isGitdir(this.gitdir)) ? await this.reader().info(sha) : undefined;
      if (!info || info.type !== "commit") {
        for (const d of dirs) out.set(d, undefined);
        return out;
      }
      const root = commitTree(await this.objectContent(sha, "commit", "", sha));
      const trees = new Map<string, Promise<TreeEntry[]>>();
      const entries = (oid: string, where: string): Promise<TreeEntry[]> => {
        let t = trees.get(oid);
        if (!t) trees.set(oid, (t = this.readTree(oid, where, sha)));
        return t;
      };
      for (const [i, d] of dirs.entries()) {
        const norm = norms[i] as string;
        let oid: string | undefined = root;
        let walked = "";
        for (const part of norm === "" ? [] : norm.split("/")) {
          const e: TreeEntry | undefined = (await entries(oid, walked)).find((x) => x.name === part);
          walked = walked === "" ? part : `${walked}/${part}`;
          oid = e?.type === "tree" ? e.oid : undefined;
          if (!oid) break;
        }
        out.set(d, oid ? { oid, names: (await entries(oid, norm)).map((e) => e.name) } : undefined);
      }
      return out;
    });
  }

  /**
   * One directory level of the commit's tree (not recursive), sorted by name. dir "" or "." = root.
   * A blob on the way to dir → "missing-path"; a symlink or submodule on the way → "unsupported-entry".
   */
  listDir(sha: string, dir: string): Promise<TreeEntryInfo[]> {
    let norm: string;
    try {
      norm = normalizeRepoDir(dir);
      checkSha(sha);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.reading(async () => {
      const entries = await this.readTree(await this.resolveDir(sha, norm), norm, sha);
      return entries
        .map((e) => ({ name: e.name, path: norm === "" ? e.name : `${norm}/${e.name}`, type: e.type }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  /**
   * One blob's bytes. A symlink or submodule at path → "unsupported-entry"; larger than maxBytes →
   * "limit" (from the object header, before reading it); missing (or a directory) → "missing-path".
   */
  readFileBytes(sha: string, filePath: string, maxBytes: number): Promise<Buffer> {
    let norm: string;
    try {
      norm = normalizeRepoDir(filePath);
      checkSha(sha);
    } catch (err) {
      return Promise.reject(err);
    }
    if (norm === "") {
      return Promise.reject(new GitSourceError(`path ${JSON.stringify(filePath)} is not a file`, "invalid-argument", false));
    }
    return this.reading(async () => {
      const slash = norm.lastIndexOf("/");
      const parent = slash < 0 ? "" : norm.slice(0, slash);
      const base = norm.slice(slash + 1);
      const entries = await this.readTree(await this.resolveDir(sha, parent, norm), parent, sha);
      const e = entries.find((x) => x.name === base);
      if (!e) throw new GitSourceError(`path ${norm} does not exist in commit ${sha}`, "missing-path", false);
      if (e.type === "symlink" || e.type === "submodule") {
        throw new GitSourceError(`${norm} in commit ${sha} is a ${e.type}; ${e.type}s are not supported`, "unsupported-entry", false);
      }
      if (e.type === "tree") throw new GitSourceError(`path ${norm} in commit ${sha} is a directory, not a file`, "missing-path", false);
      const size = await this.objectSize(e.oid, "blob", norm, sha);
      if (size > maxBytes) {
        throw new GitSourceError(`${norm} in commit ${sha} is ${size} bytes, over the limit of ${maxBytes} bytes`, "limit", false);
      }
      return this.objectContent(e.oid, "blob", norm, sha);
    });
  }

  // ---- internals ----

  /** Runs fn after every earlier operation on this gitdir (fetches, re-clones and reads never overlap). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.state.queue.then(fn, fn);
    this.state.queue = run.catch(() => undefined);
    return run;
  }

  /** A locked read: a reader failure (timeout, broken child, corrupt object) throws the cache away. */
  private reading<T>(fn: () => Promise<T>): Promise<T> {
    return this.locked(async () => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof GitSourceError) {
          if (err.code === "cache") await this.discardUnlocked();
          throw err;
        }
        await this.discardUnlocked();
        const why = err instanceof Error ? err.message : String(err);
        throw new GitSourceError(
          `reading the cache of ${this.displayUrl} failed (${why}); the cache was thrown away and is refetched next time`,
          "cache",
          true,
          { cause: err },
        );
      }
    });
  }

  private reader(): ObjectReader {
    this.state.reader ??= new ObjectReader(this.gitdir, this.env(), this.readTimeoutMs);
    return this.state.reader;
  }

  private closeReader(): void {
    this.state.reader?.close();
    this.state.reader = undefined;
  }

  private async discardUnlocked(): Promise<void> {
    this.closeReader();
    await fsp.rm(this.gitdir, { recursive: true, force: true });
  }

  private env(): NodeJS.ProcessEnv {
    return gitEnv({
      authorization: this.authorization,
      caFile: this.caFile,
      lowSpeedSeconds: this.httpTimeoutMs / 1000,
      home: this.gitHome(),
    });
  }

  /** git's HOME inside the cache: private to plumber, and nothing left behind in /tmp. */
  private gitHome(): string {
    const home = path.join(this.cacheDir, ".home");
    if (!madeHomes.has(home)) {
      mkdirSync(home, { recursive: true, mode: 0o700 });
      madeHomes.add(home);
    }
    return home;
  }

  /** The commit's tree, then one component at a time so errors say exactly what is wrong. */
  private async resolveDir(sha: string, norm: string, wanted: string = norm): Promise<string> {
    const info = await this.reader().info(sha);
    if (!info || info.type !== "commit") {
      throw new GitSourceError(
        `commit ${sha} of ${this.displayUrl} is not in the local cache (fetch it with ensureCommit first)`,
        "missing-commit",
        false,
      );
    }
    let treeOid = commitTree(await this.objectContent(sha, "commit", "", sha));
    let walked = "";
    for (const part of norm === "" ? [] : norm.split("/")) {
      const entry = (await this.readTree(treeOid, walked, sha)).find((e) => e.name === part);
      walked = walked === "" ? part : `${walked}/${part}`;
      if (!entry) throw new GitSourceError(`path ${wanted} does not exist in commit ${sha}`, "missing-path", false);
      if (entry.type === "symlink" || entry.type === "submodule") {
        throw new GitSourceError(`path ${walked} in commit ${sha} is a ${entry.type}; ${entry.type}s are not supported`, "unsupported-entry", false);
      }
      if (entry.type !== "tree") throw new GitSourceError(`path ${walked} in commit ${sha} is not a directory`, "missing-path", false);
      treeOid = entry.oid;
    }
    return treeOid;
  }

  private async readTree(oid: string, where: string, sha: string): Promise<TreeEntry[]> {
    const shown = where === "" ? "/" : where;
    const size = await this.objectSize(oid, "tree", shown, sha);
    if (size > this.maxTreeBytes) {
      throw new GitSourceError(`tree ${shown} in commit ${sha} is ${size} bytes, over the limit of ${this.maxTreeBytes} bytes`, "limit", false);
    }
    const raw = parseTree(await this.objectContent(oid, "tree", shown, sha));
    return raw.map((e) => {
      if (e.name === "" || e.name === "." || e.name === ".." || e.name.includes("/") || e.name.includes("\u0000")) {
        throw new GitSourceError(`tree ${shown} in commit ${sha} has an invalid entry name ${JSON.stringify(e.name)}`, "unsupported-entry", false);
      }
      return { ...e, type: entryType(e.mode) };
    });
  }

  /** Size from the object header; a missing or mistyped object means a corrupt cache. */
  private async objectSize(oid: string, type: string, where: string, sha: string): Promise<number> {
    const info = await this.reader().info(oid);
    if (!info || info.type !== type) throw this.corrupt(oid, type, where, sha);
    return info.size;
  }

  private async objectContent(oid: string, type: string, where: string, sha: string): Promise<Buffer> {
    const r = await this.reader().contents(oid);
    if (!r || r.info.type !== type) throw this.corrupt(oid, type, where, sha);
    return r.content;
  }

  private corrupt(oid: string, type: string, where: string, sha: string): GitSourceError {
    return new GitSourceError(
      `the cache of ${this.displayUrl} lacks ${type} ${oid} (${where || "/"} in commit ${sha}); it was thrown away and is refetched next time`,
      "cache",
      true,
    );
  }

  private async hasCommitUnlocked(sha: string): Promise<boolean> {
    if (!(await isGitdir(this.gitdir))) return false;
    try {
      return (await this.reader().info(sha))?.type === "commit";
    } catch (e) {
      if (!(e instanceof ObjectReadError)) throw e;
      await this.discardUnlocked();
      return false;
    }
  }

  private async localRef(branch: string): Promise<string> {
    try {
      return (await fsp.readFile(path.join(this.gitdir, "refs", "heads", ...branch.split("/")), "utf8")).trim();
    } catch {
      return "";
    }
  }

  private async packCountUnlocked(): Promise<number> {
    try {
      const names = await fsp.readdir(path.join(this.gitdir, "objects", "pack"));
      return names.filter((n) => n.endsWith(".pack")).length;
    } catch {
      return 0;
    }
  }

  /** One pack of what the branches reach; what nothing reaches any more is dropped. */
  private async compact(): Promise<void> {
    try {
      await runGit(["--git-dir", this.gitdir, "repack", "-a", "-d", "-q"], { env: this.env(), timeoutMs: this.fetchTimeoutMs });
    } catch (e) {
      // A cache that cannot be repacked is rebuilt by the next fetch.
      await this.discardUnlocked();
      throw this.cliError(`compacting the cache of`, e);
    }
  }

  /** Fetch into a fresh temporary gitdir, then swap it in: a failed clone leaves nothing behind. */
  private async cloneFresh(branch: string, depth = 1): Promise<void> {
    await fsp.mkdir(this.cacheDir, { recursive: true });
    const tmp = `${this.gitdir}.tmp-${randomBytes(6).toString("hex")}`;
    try {
      await runGit(["init", "--bare", "-q", tmp], { env: this.env(), timeoutMs: 30_000 });
      await this.fetchBranch(tmp, branch, depth);
      await fsp.rm(this.gitdir, { recursive: true, force: true });
      await fsp.rename(tmp, this.gitdir);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  private async fetchBranch(gitdir: string, branch: string, depth = 1): Promise<void> {
    await this.ensureCaFile();
    const packDir = path.join(gitdir, "objects", "pack");
    const budget = async (): Promise<string | undefined> => {
      let n = 0;
      for (const f of await fsp.readdir(packDir).catch(() => [] as string[])) {
        if (!f.startsWith("tmp_") && !f.startsWith(".tmp")) continue;
        n += (await fsp.stat(path.join(packDir, f)).catch(() => ({ size: 0 }))).size;
      }
      return n > this.maxFetchBytes ? `the fetch wrote more than ${this.maxFetchBytes} bytes` : undefined;
    };
    try {
      await runGit(
        [
          "--git-dir", gitdir, "fetch", "--quiet", `--depth=${depth}`, "--no-tags", "--no-recurse-submodules",
          "--no-write-fetch-head", "--no-auto-gc", "--no-auto-maintenance",
          this.url, `+refs/heads/${branch}:refs/heads/${branch}`,
        ],
        { env: this.env(), timeoutMs: this.fetchTimeoutMs, watch: budget, maxStdout: 64 * 1024 },
      );
    } catch (e) {
      const err = this.cliError(`fetching branch ${branch} of`, e);
      if (err.code === "cache") await this.discardUnlocked();
      throw err;
    }
  }

  /** git's http.sslCAInfo replaces its roots: give it Node's roots plus the configured CA, like the listing. */
  private async ensureCaFile(): Promise<void> {
    if (this.caPem === undefined || this.caFile !== undefined) return;
    const bundle = `${tls.rootCertificates.join("\n")}\n${this.caPem}\n`;
    const file = path.join(this.cacheDir, `.ca-${createHash("sha256").update(bundle).digest("hex").slice(0, 16)}.pem`);
    await fsp.mkdir(this.cacheDir, { recursive: true });
    await fsp.writeFile(file, bundle, { mode: 0o600 });
    this.caFile = file;
  }

  private cliError(what: string, err: unknown): GitSourceError {
    const where = `${what} ${this.displayUrl}`;
    if (!(err instanceof GitCliError)) return new GitSourceError(`${where}: ${String(err)}`, "network", true, { cause: err });
    if (err.kind === "timeout") return new GitSourceError(`${where}: ${err.message}`, "network", true, { cause: err });
    if (err.kind === "too-large") return new GitSourceError(`${where}: ${err.message} (the fetch size limit)`, "limit", false, { cause: err });
    if (err.kind === "spawn") return new GitSourceError(`${where}: cannot run git (${err.message}); is git installed?`, "protocol", false, { cause: err });
    const s = err.stderr;
    const msg = `${where}: ${lastLines(s) || err.message}`;
    const status = /returned error: (\d{3})/.exec(s);
    if (status) {
      const code = Number(status[1]);
      if (code === 401 || code === 403) return new GitSourceError(`${where}: authentication failed (HTTP ${code}); check the repository credentials`, "auth", false, { cause: err });
      if (code === 404) return new GitSourceError(`${where}: repository not found (HTTP 404)`, "not-found", false, { cause: err });
      const retryable = code >= 500 || code === 429 || code === 408;
      return new GitSourceError(`${where}: server answered HTTP ${code}`, retryable ? "network" : "protocol", retryable, { cause: err });
    }
    if (/Authentication failed|could not read (Username|Password)|terminal prompts disabled/i.test(s)) {
      return new GitSourceError(`${where}: authentication failed; check the repository credentials`, "auth", false, { cause: err });
    }
    if (/couldn't find remote ref/i.test(s)) {
      return new GitSourceError(`${where}: branch not found on the server`, "not-found", false, { cause: err });
    }
    if (/timed out|Operation too slow|Could not resolve|Failed to connect|Connection refused|Connection reset|transfer closed|early EOF|hung up|unexpected disconnect|RPC failed|SSL|gnutls|TLS/i.test(s)) {
      return new GitSourceError(msg, "network", true, { cause: err });
    }
    if (/bad object|corrupt|loose object|unable to read|could not read [0-9a-f]{40}|shallow file|did not send all necessary objects|bad pack|index-pack failed|fsck/i.test(s)) {
      // Either side may be at fault; a fresh clone settles it.
      return new GitSourceError(`${msg} (the local cache is thrown away; the next fetch clones afresh)`, "cache", true, { cause: err });
    }
    return new GitSourceError(msg, "protocol", false, { cause: err });
  }
}

function checkSha(sha: string): void {
  if (!SHA_RE.test(sha)) throw new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false);
}

function entryType(mode: string): TreeEntryInfo["type"] {
  if (mode === "120000") return "symlink";
  if (mode === "160000") return "submodule";
  if (mode === "040000") return "tree";
  return "blob";
}

async function isGitdir(gitdir: string): Promise<boolean> {
  try {
    await fsp.access(path.join(gitdir, "HEAD"));
    return true;
  } catch {
    return false;
  }
}
