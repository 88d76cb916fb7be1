// Manifests of one commit: files under a path, read from git objects, parsed.

import type { GitRepo, ReadLimits, RepoFile } from "../git/repo.js";
import type { Manifest } from "../types.js";
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
  const files = await repo.readFiles(sha, path, isManifestFile, { ...DEFAULT_READ_LIMITS, ...limits });
  return cache ? cache.parse(files, parseOptions) : parseManifests(files, parseOptions);
}

/**
 * Each file's manifests as last parsed, by path and blob id: a commit that changes one file of an
 * app's 200 parses that one file, and the others' manifests are the very objects of the last
 * render (the engine caches their hashes by identity). Holds only the files of the last render.
 * Callers never mutate a Manifest (resolving copies what it changes).
 */
export class ManifestCache {
  private files = new Map<string, { oid: string; options: string; manifests: Manifest[] }>();

  parse(files: RepoFile[], parseOptions?: ParseOptions): Manifest[] {
    const options = JSON.stringify(parseOptions ?? {});
    const next = new Map<string, { oid: string; options: string; manifests: Manifest[] }>();
    const out: Manifest[] = [];
    try {
      for (const f of files) {
        if (!isManifestFile(f.path)) continue;
        const hit = this.files.get(f.path);
        const manifests = f.oid !== undefined && hit?.oid === f.oid && hit.options === options ? hit.manifests : parseManifests([f], parseOptions);
        if (f.oid !== undefined) next.set(f.path, { oid: f.oid, options, manifests });
        for (const m of manifests) out.push(m);
      }
    } catch {
      // Problems are reported for every file at once, as without a cache.
      this.files = new Map();
      return parseManifests(files, parseOptions);
    }
    this.files = next;
    return out;
  }
}
