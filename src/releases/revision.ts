// Which revision a release fires, and its template at that revision.
//
//   head                              the branch head now (one ref listing)
//   {deployedTo: APP, olderThan: D}   the newest revision APP had deployed — result Applied in
//                                     its history in the cluster — at least D before the slot:
//                                     a lagged promotion ("release what staging has run for 24h")

import fs from "node:fs";
import fsp from "node:fs/promises";
import nodePath from "node:path";
import * as git from "isomorphic-git";
import type { HttpClient } from "isomorphic-git";
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

const TEMPLATE_LIMITS = { maxFileBytes: 1024 * 1024, maxTotalBytes: 1024 * 1024, maxFiles: 1 };
const HISTORY_DEPTHS = [64, 1024];

/**
 * Reads a template file at `sha`. plumber's git cache holds branch heads (depth 1); a lagged
 * revision that is no longer there is fetched into a second gitdir beside it, with branch history
 * down to a depth of 1024 commits.
 */
export class TemplateReader {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly repo: GitRepo,
    private readonly http: HttpClient,
  ) {}

  async read(branch: string, sha: string, path: string): Promise<Record<string, unknown>> {
    if (!(await this.repo.hasCommit(sha))) {
      try {
        await this.repo.ensureCommit(branch, sha);
      } catch (e) {
        if (!(e instanceof GitSourceError && e.code === "moved")) throw e;
      }
    }
    if (await this.repo.hasCommit(sha)) {
      const dir = nodePath.posix.dirname(path);
      const files = await this.repo.readFiles(sha, dir === "." ? "" : dir, (p) => p === path, TEMPLATE_LIMITS);
      const file = files[0];
      if (!file) throw notFound(path, sha);
      return parseTemplateFile(path, file.content);
    }
    return this.readFromHistory(branch, sha, path);
  }

  private historyDir(): string {
    return `${this.repo.gitdir}.history`;
  }

  private readFromHistory(branch: string, sha: string, path: string): Promise<Record<string, unknown>> {
    const run = this.queue.then(async () => {
      const gitdir = this.historyDir();
      const has = async (): Promise<boolean> => {
        try {
          await git.readCommit({ fs, gitdir, oid: sha });
          return true;
        } catch {
          return false;
        }
      };
      if (!(await has())) {
        await fsp.mkdir(gitdir, { recursive: true });
        try {
          await fsp.access(nodePath.join(gitdir, "HEAD"));
        } catch {
          await git.init({ fs, gitdir, bare: true });
          await git.addRemote({ fs, gitdir, remote: "origin", url: this.repo.url, force: true });
        }
        for (const depth of HISTORY_DEPTHS) {
          try {
            await git.fetch({ fs, http: this.http, gitdir, url: this.repo.url, ref: branch, remoteRef: `refs/heads/${branch}`, singleBranch: true, depth, tags: false });
          } catch (e) {
            throw new GitSourceError(`fetching the history of branch ${branch}: ${e instanceof Error ? e.message : String(e)}`, "network", true, { cause: e });
          }
          if (await has()) break;
        }
        if (!(await has())) {
          throw new GitSourceError(`commit ${sha} is not among the last ${HISTORY_DEPTHS.at(-1)} commits of branch ${branch}`, "missing-commit", false);
        }
      }
      let blob: Uint8Array;
      try {
        ({ blob } = await git.readBlob({ fs, gitdir, oid: sha, filepath: path }));
      } catch {
        throw notFound(path, sha);
      }
      if (blob.byteLength > TEMPLATE_LIMITS.maxFileBytes) throw new FileProblemError([{ file: path, line: 1, message: `template is larger than 1 MiB` }]);
      return parseTemplateFile(path, new TextDecoder("utf-8", { fatal: true }).decode(blob));
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function notFound(path: string, sha: string): GitSourceError {
  return new GitSourceError(`template ${path} does not exist in commit ${sha}`, "missing-path", false);
}
