// Manifests of one commit: files under a path, read from git objects, parsed.

import type { GitRepo, KnownFile, ReadLimits, RepoFile } from "../git/repo.js";
import { FileProblemError, type Manifest } from "../types.js";
import { isManifestFile, parseManifests, type ParseOptions } from "./parse.js";

export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxFileBytes: 1024 * 1024,
  maxTotalBytes: 32 * 1024 * 1024,
  maxFiles: 5000,
};

/**
 * Reads every *.yaml, *.yml and *.json file under `path` (recursively) in commit `sha` and parses
 * them. The commit must be available locally (GitRepo.ensureCommit).
 * Throws GitSourceError for tree problems (missing path, symlink, submodule, limits) and
 * FileProblemError with every manifest problem at once.
 */
export async function readManifests(
  repo: GitRepo,
  sha: string,
  path: string,
  limits?: Partial<ReadLimits>,
  parseOptions?: ParseOptions,
  cache?: ManifestCache,
): Promise<Manifest[]> {
  const all = { ...DEFAULT_READ_LIMITS, ...limits };
  if (!cache) return parseManifests(await repo.readFiles(sha, path, isManifestFile, all), parseOptions);
  // Blobs the cache parsed last time are not read again: their manifests are reused as they were.
  return cache.parse(await repo.readFilesExcept(sha, path, isManifestFile, all, (p, oid) => cache.has(p, oid, parseOptions)), parseOptions);
}

/**
 * Each file's manifests as last parsed, by path and blob id: a commit that changes one file of an
 * app's 200 parses that one file, and the others' manifests are the very objects of the last
 * render (the engine caches their hashes by identity). Holds only the files of the last render.
 * Callers never mutate a Manifest (resolving copies what it changes).
 */
export class ManifestCache {
  private files = new Map<string, { oid: string; options: string; manifests: Manifest[] }>();

  /** Whether the file at `path` with blob `oid` was parsed with these options by the last parse. */
  has(path: string, oid: string, parseOptions?: ParseOptions): boolean {
    const hit = this.files.get(path);
    return hit !== undefined && hit.oid === oid && hit.options === JSON.stringify(parseOptions ?? {});
  }

  /** `files`: read, or known (has() said so): a known file's manifests come from the last parse. */
  parse(files: (RepoFile | KnownFile)[], parseOptions?: ParseOptions): Manifest[] {
    const options = JSON.stringify(parseOptions ?? {});
    const next = new Map<string, { oid: string; options: string; manifests: Manifest[] }>();
    const out: Manifest[] = [];
    try {
      for (const f of files) {
        if (!isManifestFile(f.path)) continue;
        const hit = this.files.get(f.path);
        const reuse = f.oid !== undefined && hit?.oid === f.oid && hit.options === options;
        if (!reuse && "known" in f) throw new Error(`${f.path}: known to the caller but not in the cache`);
        const manifests = reuse ? hit.manifests : parseManifests([f as RepoFile], parseOptions);
        if (f.oid !== undefined) next.set(f.path, { oid: f.oid, options, manifests });
        for (const m of manifests) out.push(m);
      }
    } catch (e) {
      // Problems are reported for every file at once, as without a cache; a known file parsed
      // without problems last time, so the files read hold them all.
      this.files = new Map();
      if (!(e instanceof FileProblemError)) throw e;
      return parseManifests(files.filter((f): f is RepoFile => !("known" in f)), parseOptions);
    }
    this.files = next;
    return out;
  }
}
