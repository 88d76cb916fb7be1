// Which revision a release fires, and its template at that revision.
//
//   head                              the branch head now (one ref listing)
//   {deployedTo: APP, olderThan: D}   the newest revision APP had deployed — result Applied in
//                                     its history in the cluster — at least D before the slot:
//                                     a lagged promotion ("release what staging has run for 24h")

import type { ReleaseConfig } from "../config/types.js";
import { GitSourceError, type GitRepo } from "../git/repo.js";
import type { AppState, DeployRecord } from "../state/store.js";
import { FileProblemError } from "../types.js";
import { parseTemplateFile } from "./template.js";

export type RevisionChoice = { revision: string; note?: string } | { skip: string };

/**
 * The newest revision `history` shows as Applied with finishedAt at or before `cutoff`.
 * History is newest first, but is sorted again to be safe against clock skew between replicas.
 */
export function laggedRevision(history: readonly DeployRecord[], cutoff: Date): DeployRecord | undefined {
  return [...history]
    .filter((r) => r.result === "Applied" && Number.isFinite(Date.parse(r.finishedAt)) && Date.parse(r.finishedAt) <= cutoff.getTime())
    .sort((a, b) => Date.parse(b.finishedAt) - Date.parse(a.finishedAt))[0];
}

export interface RevisionSources {
  repo: GitRepo;
  /** The app's state (from its cluster), for deployedTo. */
  appState(app: string): Promise<AppState | undefined>;
}

/** Throws on transient trouble (git or the cluster unreachable): the slot is tried again later. */
export async function chooseRevision(release: ReleaseConfig, src: RevisionSources, slot: Date): Promise<RevisionChoice> {
  if (release.revision.kind === "head") {
    const heads = await src.repo.listHeads();
    const sha = heads.get(release.branch);
    if (!sha) return { skip: `branch "${release.branch}" does not exist in repo ${release.repo}` };
    return { revision: sha };
  }
  const { app, olderThanMs } = release.revision;
  const state = await src.appState(app);
  if (!state) return { skip: `app ${app} has no state in its cluster yet (never deployed)` };
  const cutoff = new Date(slot.getTime() - olderThanMs);
  const rec = laggedRevision(state.history, cutoff);
  if (!rec) {
    return { skip: `app ${app} has no revision deployed (result Applied) at or before ${cutoff.toISOString()} in its last ${state.history.length} deploys` };
  }
  return { revision: rec.revision, note: `deployed to ${app} at ${rec.finishedAt}` };
}

const MAX_TEMPLATE_BYTES = 1024 * 1024;
const HISTORY_DEPTHS = [64, 1024];

/**
 * Reads a template file at `sha`. plumber's git cache holds branch heads (depth 1); a lagged
 * revision that is no longer there is fetched into a second gitdir beside it
 * (GitRepo.historyMirror), with branch history down to a depth of 1024 commits.
 */
export class TemplateReader {
  private history?: GitRepo;

  constructor(private readonly repo: GitRepo) {}

  async read(branch: string, sha: string, path: string): Promise<Record<string, unknown>> {
    if (!(await this.repo.hasCommit(sha))) {
      try {
        await this.repo.ensureCommit(branch, sha);
      } catch (e) {
        if (!(e instanceof GitSourceError && e.code === "moved")) throw e;
      }
    }
    if (await this.repo.hasCommit(sha)) return readTemplate(this.repo, sha, path);
    this.history ??= this.repo.historyMirror();
    await this.history.ensureHistory(branch, sha, HISTORY_DEPTHS);
    return readTemplate(this.history, sha, path);
  }
}

/** The template at `path` in commit `sha`, which must be in `repo`'s cache; 1 MiB at most, UTF-8. */
async function readTemplate(repo: GitRepo, sha: string, path: string): Promise<Record<string, unknown>> {
  let bytes: Buffer;
  try {
    bytes = await repo.readFileBytes(sha, path, MAX_TEMPLATE_BYTES);
  } catch (e) {
    if (e instanceof GitSourceError && e.code === "missing-path") throw notFound(path, sha);
    if (e instanceof GitSourceError && e.code === "limit") throw new FileProblemError([{ file: path, line: 1, message: `template is larger than 1 MiB` }]);
    throw e;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new FileProblemError([{ file: path, line: 1, message: `template is not valid UTF-8` }]);
  }
  return parseTemplateFile(path, text);
}

function notFound(path: string, sha: string): GitSourceError {
  return new GitSourceError(`template ${path} does not exist in commit ${sha}`, "missing-path", false);
}
