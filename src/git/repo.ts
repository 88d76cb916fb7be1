// A remote git repository mirrored into a bare, shallow gitdir on local disk.
// Reads go straight to git objects (no checkout); fetches are depth 1, one branch at a time,
// and incremental (the last fetched head of the branch is offered as a "have").

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import * as git from "isomorphic-git";
import type { HttpClient } from "isomorphic-git";
import { GitHttpError } from "./http.js";
import { redactUrl, validateRepoUrl } from "./url.js";

export type GitErrorCode =
  /** The server refused the credentials (HTTP 401/403). */
  | "auth"
  /** The repository or branch does not exist (HTTP 404, unknown branch). */
  | "not-found"
  /** Timeout, connection failure, HTTP 5xx/429: try again later. */
  | "network"
  /** The branch moved between listing and fetching; list again and retry. */
  | "moved"
  /** The server is not a usable git smart-HTTP server, or sent something too large. */
  | "protocol"
  /** A bad argument: branch name, commit id, directory path. */
  | "invalid-argument"
  /** The commit is not in the local cache (call ensureCommit first). */
  | "missing-commit"
  /** The directory does not exist in the commit, or is not a directory. */
  | "missing-path"
  /** A symlink or submodule in the tree being read. */
  | "unsupported-entry"
  /** A file or the tree is over a size/count limit, or a file is not UTF-8. */
  | "limit";

export class GitSourceError extends Error {
  constructor(
    message: string,
    readonly code: GitErrorCode,
    /** True when the same call may succeed later without any change on our side. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GitSourceError";
  }
}

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
  /** isomorphic-git HTTP plugin, normally createGitHttp(...). */
  http: HttpClient;
  /** Shared cache directory; this repository's bare gitdir is <cacheDir>/<repoCacheKey(url)>. */
  cacheDir: string;
  /** Re-clone instead of fetching once objects/pack holds this many packs. Default 32. */
  maxPacks?: number;
  /**
   * Ask for thin packs on fetch (default true). isomorphic-git does not request them, and without
   * them a depth-1 fetch re-sends the whole tree of every new commit even though we offer the
   * previous head as a "have". isomorphic-git reads thin packs fine (it resolves external bases
   * from the gitdir); we only ever read this gitdir with isomorphic-git.
   */
  thinPack?: boolean;
}

export const DEFAULT_MAX_PACKS = 32;

/** First 16 hex digits of sha256 of the normalized URL: the gitdir's name under cacheDir. */
export function repoCacheKey(url: string): string {
  return createHash("sha256").update(validateRepoUrl(url)).digest("hex").slice(0, 16);
}

const SHA_RE = /^[0-9a-f]{40}$/;

/** git check-ref-format rules for a branch name (the part after refs/heads/). */
export function isValidBranchName(name: string): boolean {
  if (name === "" || name === "@" || name.length > 255) return false;
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
  cache: object;
}
const gitdirStates = new Map<string, GitdirState>();

export class GitRepo {
  readonly url: string;
  readonly gitdir: string;
  private readonly http: HttpClient;
  private readonly maxPacks: number;
  /** Lock and isomorphic-git cache, shared by every GitRepo on the same gitdir in this process. */
  private readonly state: GitdirState;

  constructor(opts: GitRepoOptions) {
    this.url = validateRepoUrl(opts.url);
    this.http = opts.thinPack === false ? opts.http : withThinPack(opts.http);
    this.gitdir = path.join(opts.cacheDir, repoCacheKey(this.url));
    this.maxPacks = opts.maxPacks ?? DEFAULT_MAX_PACKS;
    let st = gitdirStates.get(this.gitdir);
    if (!st) {
      st = { queue: Promise.resolve(), cache: {} };
      gitdirStates.set(this.gitdir, st);
    }
    this.state = st;
  }

  /** isomorphic-git's object/pack cache (holds loaded packs); replaced whenever the gitdir is. */
  private get cache(): object {
    return this.state.cache;
  }
  private set cache(c: object) {
    this.state.cache = c;
  }

  /** The URL without credentials, for messages. */
  get displayUrl(): string {
    return redactUrl(this.url);
  }

  /**
   * Branch name → head commit, from one HTTP request (the info/refs advertisement).
   * Protocol v1 is used on purpose: v2 ls-refs costs a second round trip (GET + POST).
   */
  async listHeads(): Promise<Map<string, string>> {
    let refs: git.ServerRef[];
    try {
      refs = await git.listServerRefs({
        http: this.http,
        url: this.url,
        protocolVersion: 1,
        prefix: "refs/heads/",
      });
    } catch (err) {
      throw this.remoteError("listing branches of", err);
    }
    const heads = new Map<string, string>();
    for (const r of refs) {
      if (!r.ref.startsWith("refs/heads/")) continue;
      heads.set(r.ref.slice("refs/heads/".length), r.oid);
    }
    return heads;
  }

  /**
   * Makes commit `sha` (the head of `branch` as last listed) available locally.
   * No network when it is already cached. Otherwise fetches the branch at depth 1 (incrementally),
   * or re-clones when the gitdir holds too many packs. If the branch moved on and `sha` is not what
   * the server sent, throws a retryable GitSourceError with code "moved".
   */
  ensureCommit(branch: string, sha: string): Promise<void> {
    if (!isValidBranchName(branch)) {
      return Promise.reject(
        new GitSourceError(`invalid branch name ${JSON.stringify(branch)}`, "invalid-argument", false),
      );
    }
    if (!SHA_RE.test(sha)) {
      return Promise.reject(new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false));
    }
    return this.locked(async () => {
      if (await this.hasCommitUnlocked(sha)) return;
      const exists = await isGitdir(this.gitdir);
      if (!exists || (await this.packCountUnlocked()) >= this.maxPacks) {
        await this.cloneFresh(branch);
      } else {
        await this.fetchBranch(this.gitdir, branch);
      }
      if (!(await this.hasCommitUnlocked(sha))) {
        let got = "";
        try {
          got = await git.resolveRef({ fs, gitdir: this.gitdir, ref: `refs/heads/${branch}` });
        } catch {
          // no ref: nothing fetched
        }
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
   * Deletes the local gitdir; the next ensureCommit clones afresh. For recovering from a corrupted
   * cache (e.g. a process killed in the middle of writing a pack).
   */
  reset(): Promise<void> {
    return this.locked(async () => {
      await fsp.rm(this.gitdir, { recursive: true, force: true });
      this.cache = {};
    });
  }

  /** Number of packfiles in the gitdir (0 when it does not exist yet). */
  packCount(): Promise<number> {
    return this.locked(() => this.packCountUnlocked());
  }

  /**
   * The files under `dir` in commit `sha` that pass `filter` (given the repo-root-relative path),
   * read from git objects without a checkout. Sorted by path.
   * Refuses symlinks and submodules anywhere under `dir`, a `dir` that escapes the repository,
   * a missing `dir`, non-UTF-8 files, and anything over `limits`.
   */
  readFiles(
    sha: string,
    dir: string,
    filter: (path: string) => boolean,
    limits: ReadLimits,
  ): Promise<RepoFile[]> {
    let norm: string;
    try {
      norm = normalizeRepoDir(dir);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!SHA_RE.test(sha)) {
      return Promise.reject(new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false));
    }
    return this.locked(async () => {
      const { fs: f, gitdir, cache } = this.ctx();
      let treeOid: string;
      try {
        treeOid = (await git.readCommit({ fs: f, gitdir, cache, oid: sha })).commit.tree;
      } catch (err) {
        throw new GitSourceError(
          `commit ${sha} of ${this.displayUrl} is not in the local cache (fetch it with ensureCommit first)`,
          "missing-commit",
          false,
          { cause: err },
        );
      }
      const shown = norm === "" ? "/" : norm;
      // Resolve dir one component at a time so errors say exactly what is wrong.
      let walked = "";
      for (const part of norm === "" ? [] : norm.split("/")) {
        const entries = await this.readTreeEntries(treeOid, walked, sha);
        const entry = entries.find((e) => e.path === part);
        walked = walked === "" ? part : `${walked}/${part}`;
        if (!entry) {
          throw new GitSourceError(`path ${shown} does not exist in commit ${sha}`, "missing-path", false);
        }
        if (entry.mode === "120000") {
          throw new GitSourceError(
            `path ${walked} in commit ${sha} is a symlink; symlinks are not supported`,
            "unsupported-entry",
            false,
          );
        }
        if (entry.type !== "tree") {
          throw new GitSourceError(`path ${walked} in commit ${sha} is not a directory`, "missing-path", false);
        }
        treeOid = entry.oid;
      }

      const out: RepoFile[] = [];
      let total = 0;
      const walk = async (oid: string, prefix: string): Promise<void> => {
        const entries = await this.readTreeEntries(oid, prefix, sha);
        for (const e of entries) {
          const full = prefix === "" ? e.path : `${prefix}/${e.path}`;
          if (e.mode === "120000") {
            throw new GitSourceError(`${full} in commit ${sha} is a symlink; symlinks are not supported`, "unsupported-entry", false);
          }
          if (e.type === "commit" || e.mode === "160000") {
            throw new GitSourceError(`${full} in commit ${sha} is a submodule; submodules are not supported`, "unsupported-entry", false);
          }
          if (e.type === "tree") {
            await walk(e.oid, full);
            continue;
          }
          if (!filter(full)) continue;
          if (out.length + 1 > limits.maxFiles) {
            throw new GitSourceError(
              `${full} in commit ${sha}: more than ${limits.maxFiles} files under ${shown}`,
              "limit",
              false,
            );
          }
          const { blob } = await git.readBlob({ fs: f, gitdir, cache, oid: e.oid });
          if (blob.byteLength > limits.maxFileBytes) {
            throw new GitSourceError(
              `${full} in commit ${sha} is ${blob.byteLength} bytes, over the limit of ${limits.maxFileBytes} bytes per file`,
              "limit",
              false,
            );
          }
          total += blob.byteLength;
          if (total > limits.maxTotalBytes) {
            throw new GitSourceError(
              `${full} in commit ${sha}: files under ${shown} total more than ${limits.maxTotalBytes} bytes`,
              "limit",
              false,
            );
          }
          let content: string;
          try {
            content = utf8.decode(blob);
          } catch {
            throw new GitSourceError(`${full} in commit ${sha} is not valid UTF-8`, "limit", false);
          }
          out.push({ path: full, content });
        }
      };
      await walk(treeOid, norm);
      out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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
    } catch (err) {
      return Promise.reject(err);
    }
    if (!SHA_RE.test(sha)) {
      return Promise.reject(new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false));
    }
    return this.locked(async () => {
      const treeOid = await this.resolveDirUnlocked(sha, norm);
      const entries = await this.readTreeEntries(treeOid, norm, sha);
      return entries
        .map((e) => ({
          name: e.path,
          path: norm === "" ? e.path : `${norm}/${e.path}`,
          type: entryType(e.mode, e.type),
        }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  /**
   * One blob's bytes. A symlink or submodule at path → "unsupported-entry"; larger than maxBytes →
   * "limit"; missing (or a directory) → "missing-path".
   */
  readFileBytes(sha: string, filePath: string, maxBytes: number): Promise<Buffer> {
    let norm: string;
    try {
      norm = normalizeRepoDir(filePath);
    } catch (err) {
      return Promise.reject(err);
    }
    if (norm === "") {
      return Promise.reject(new GitSourceError(`path ${JSON.stringify(filePath)} is not a file`, "invalid-argument", false));
    }
    if (!SHA_RE.test(sha)) {
      return Promise.reject(new GitSourceError(`invalid commit id ${JSON.stringify(sha)}`, "invalid-argument", false));
    }
    return this.locked(async () => {
      const slash = norm.lastIndexOf("/");
      const parent = slash < 0 ? "" : norm.slice(0, slash);
      const base = slash < 0 ? norm : norm.slice(slash + 1);
      const treeOid = await this.resolveDirUnlocked(sha, parent, norm);
      const entries = await this.readTreeEntries(treeOid, parent, sha);
      const e = entries.find((x) => x.path === base);
      if (!e) throw new GitSourceError(`path ${norm} does not exist in commit ${sha}`, "missing-path", false);
      const t = entryType(e.mode, e.type);
      if (t === "symlink" || t === "submodule") {
        throw new GitSourceError(`${norm} in commit ${sha} is a ${t}; ${t}s are not supported`, "unsupported-entry", false);
      }
      if (t === "tree") throw new GitSourceError(`path ${norm} in commit ${sha} is a directory, not a file`, "missing-path", false);
      const { blob } = await git.readBlob({ fs, gitdir: this.gitdir, cache: this.cache, oid: e.oid });
      if (blob.byteLength > maxBytes) {
        throw new GitSourceError(
          `${norm} in commit ${sha} is ${blob.byteLength} bytes, over the limit of ${maxBytes} bytes`,
          "limit",
          false,
        );
      }
      return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    });
  }

  /** The tree oid of directory `norm` in commit sha; errors name the first bad component. */
  private async resolveDirUnlocked(sha: string, norm: string, wanted: string = norm): Promise<string> {
    let treeOid: string;
    try {
      treeOid = (await git.readCommit({ fs, gitdir: this.gitdir, cache: this.cache, oid: sha })).commit.tree;
    } catch (err) {
      throw new GitSourceError(
        `commit ${sha} of ${this.displayUrl} is not in the local cache (fetch it with ensureCommit first)`,
        "missing-commit",
        false,
        { cause: err },
      );
    }
    let walked = "";
    for (const part of norm === "" ? [] : norm.split("/")) {
      const entries = await this.readTreeEntries(treeOid, walked, sha);
      const entry = entries.find((e) => e.path === part);
      walked = walked === "" ? part : `${walked}/${part}`;
      if (!entry) throw new GitSourceError(`path ${wanted} does not exist in commit ${sha}`, "missing-path", false);
      const t = entryType(entry.mode, entry.type);
      if (t === "symlink" || t === "submodule") {
        throw new GitSourceError(`path ${walked} in commit ${sha} is a ${t}; ${t}s are not supported`, "unsupported-entry", false);
      }
      if (t !== "tree") throw new GitSourceError(`path ${walked} in commit ${sha} is not a directory`, "missing-path", false);
      treeOid = entry.oid;
    }
    return treeOid;
  }

  // ---- internals ----

  private ctx(): { fs: typeof fs; gitdir: string; cache: object } {
    return { fs, gitdir: this.gitdir, cache: this.cache };
  }

  /** Runs fn after every earlier operation on this gitdir (fetches, re-clones and reads never overlap). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.state.queue.then(fn, fn);
    this.state.queue = run.catch(() => undefined);
    return run;
  }

  private async readTreeEntries(oid: string, where: string, sha: string): Promise<git.TreeEntry[]> {
    const { tree } = await git.readTree({ fs, gitdir: this.gitdir, cache: this.cache, oid });
    for (const e of tree) {
      if (e.path === "" || e.path === "." || e.path === ".." || e.path.includes("/") || e.path.includes("\u0000")) {
        throw new GitSourceError(
          `tree ${where === "" ? "/" : where} in commit ${sha} has an invalid entry name ${JSON.stringify(e.path)}`,
          "unsupported-entry",
          false,
        );
      }
    }
    return tree;
  }

  private async hasCommitUnlocked(sha: string): Promise<boolean> {
    if (!(await isGitdir(this.gitdir))) return false;
    try {
      const { type } = await git.readObject({ fs, gitdir: this.gitdir, cache: this.cache, oid: sha, format: "content" });
      return type === "commit";
    } catch {
      return false;
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

  /** Fetch into a fresh temporary gitdir, then swap it in: a failed clone leaves the old one intact. */
  private async cloneFresh(branch: string): Promise<void> {
    await fsp.mkdir(path.dirname(this.gitdir), { recursive: true });
    const tmp = `${this.gitdir}.tmp-${randomBytes(6).toString("hex")}`;
    try {
      await git.init({ fs, gitdir: tmp, bare: true });
      await git.addRemote({ fs, gitdir: tmp, remote: "origin", url: this.url });
      await this.fetchBranch(tmp, branch, {});
      await fsp.rm(this.gitdir, { recursive: true, force: true });
      await fsp.rename(tmp, this.gitdir);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    this.cache = {};
  }

  private async fetchBranch(gitdir: string, branch: string, cache: object = this.cache): Promise<void> {
    let result: git.FetchResult;
    try {
      // ref=branch makes isomorphic-git offer refs/heads/<branch> (our last fetched head) as a "have",
      // so the server sends only what changed.
      result = await git.fetch({
        fs,
        http: this.http,
        gitdir,
        cache,
        url: this.url,
        ref: branch,
        remoteRef: `refs/heads/${branch}`,
        singleBranch: true,
        depth: 1,
        tags: false,
      });
    } catch (err) {
      throw this.remoteError(`fetching branch ${branch} of`, err);
    }
    if (!result.fetchHead) {
      throw new GitSourceError(`branch ${branch} not found in ${this.displayUrl} (empty repository)`, "not-found", false);
    }
    await git.writeRef({ fs, gitdir, ref: `refs/heads/${branch}`, value: result.fetchHead, force: true });
  }

  private remoteError(what: string, err: unknown): GitSourceError {
    const where = this.displayUrl;
    if (err instanceof GitSourceError) return err;
    if (err instanceof GitHttpError) {
      const retryable = err.code === "timeout" || err.code === "network" || err.code === "aborted";
      return new GitSourceError(`${what} ${where}: ${err.message}`, retryable ? "network" : "protocol", retryable, {
        cause: err,
      });
    }
    const e = err as { code?: string; message?: string; data?: { statusCode?: number; statusMessage?: string } };
    if (e?.code === "HttpError" && e.data?.statusCode !== undefined) {
      const status = e.data.statusCode;
      const line = `HTTP ${status}${e.data.statusMessage ? ` ${e.data.statusMessage}` : ""}`;
      if (status === 401 || status === 403) {
        return new GitSourceError(
          `${what} ${where}: authentication failed (${line}); check the repository credentials`,
          "auth",
          false,
          { cause: err },
        );
      }
      if (status === 404) {
        return new GitSourceError(`${what} ${where}: repository not found (${line})`, "not-found", false, { cause: err });
      }
      const retryable = status >= 500 || status === 429 || status === 408;
      return new GitSourceError(`${what} ${where}: server answered ${line}`, retryable ? "network" : "protocol", retryable, {
        cause: err,
      });
    }
    if (e?.code === "NotFoundError") {
      return new GitSourceError(`${what} ${where}: ${e.message ?? "not found"}`, "not-found", false, { cause: err });
    }
    if (e?.code === "SmartHttpError" || e?.code === "UnknownTransportError" || e?.code === "RemoteCapabilityError") {
      return new GitSourceError(`${what} ${where}: not a usable git smart-HTTP server (${e.code})`, "protocol", false, {
        cause: err,
      });
    }
    return new GitSourceError(`${what} ${where}: ${e?.message ?? String(err)}`, "network", true, { cause: err });
  }
}

/**
 * Adds the `thin-pack` capability to the first "want" line of upload-pack requests (protocol v0/v1).
 * Every mainstream server (git http-backend, GitHub, GitLab, Gitea, Bitbucket, JGit) advertises it.
 */
export function withThinPack(http: HttpClient): HttpClient {
  return {
    async request(req) {
      if ((req.method ?? "GET").toUpperCase() !== "POST" || !/\/git-upload-pack$/.test(req.url) || !req.body) {
        return http.request(req);
      }
      const chunks: Uint8Array[] = [];
      const body = req.body as unknown;
      if (Array.isArray(body)) chunks.push(...(body as Uint8Array[]));
      else for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(c);
      const patched = addThinPackCapability(Buffer.concat(chunks));
      return http.request({ ...req, body: [patched] as unknown as AsyncIterableIterator<Uint8Array> });
    },
  };
}

/** Exported for tests. Returns the request unchanged unless its first pkt-line is a v0 "want" with capabilities. */
export function addThinPackCapability(buf: Buffer): Buffer {
  if (buf.length < 4) return buf;
  const len = Number.parseInt(buf.subarray(0, 4).toString("latin1"), 16);
  if (!Number.isInteger(len) || len < 4 + 46 || len > buf.length) return buf;
  const line = buf.subarray(4, len).toString("latin1");
  const m = /^want [0-9a-f]{40} ([^\n]*)(\n?)$/.exec(line);
  if (!m || m[1]!.split(" ").includes("thin-pack")) return buf;
  const newLine = `want ${line.slice(5, 45)} ${m[1]} thin-pack${m[2]}`;
  const newLen = 4 + Buffer.byteLength(newLine, "latin1");
  if (newLen > 0xfff0) return buf;
  return Buffer.concat([
    Buffer.from(newLen.toString(16).padStart(4, "0"), "latin1"),
    Buffer.from(newLine, "latin1"),
    buf.subarray(len),
  ]);
}

function entryType(mode: string, type: string): TreeEntryInfo["type"] {
  if (mode === "120000") return "symlink";
  if (mode === "160000" || type === "commit") return "submodule";
  return type === "tree" ? "tree" : "blob";
}

async function isGitdir(gitdir: string): Promise<boolean> {
  try {
    await fsp.access(path.join(gitdir, "HEAD"));
    return true;
  } catch {
    return false;
  }
}
