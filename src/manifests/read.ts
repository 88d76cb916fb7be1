// Manifests of one commit: files under a path, read from git objects, parsed.

import type { GitRepo, ReadLimits } from "../git/repo.js";
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
): Promise<Manifest[]> {
  const files = await repo.readFiles(sha, path, isManifestFile, { ...DEFAULT_READ_LIMITS, ...limits });
  return parseManifests(files, parseOptions);
}
