// One read of the fleet for the dashboard: each app's stored state, its live drift and its
// objects' health, the commits its revisions name, each release's state and next revision. Reads
// only, with the runtime's connections (the user's kubeconfig under `plumber dashboard`).
import { createHash } from "node:crypto";
import { healthOf } from "../health/index.js";
import type { AppReconciler } from "../reconcile/app.js";
import type { Runtime } from "../reconcile/runtime.js";
import type { Logger } from "../log.js";
import { mapLimit } from "../util/pool.js";
import { parseCommit, type CommitInfo } from "./commit.js";
import type { AppReading, ObjectView, ReleaseReading } from "./model.js";

export interface Snapshot {
  /** When the read ended (ISO). */
  at: string;
  apps: AppReading[];
  releases: ReleaseReading[];
  commits: ReadonlyMap<string, CommitInfo>;
  /** Digest of what the pages show, without the read time: equal digests need no live update. */
  digest: string;
}

const READ_CONCURRENCY = 8;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function readApp(rt: Runtime, app: AppReconciler): Promise<AppReading> {
  const config = app.app;
  try {
    await rt.clusters.get(config.cluster)?.verify();
    const state = await app.reloadState();
    if (state.inventory.length === 0) return { config, state };
    const report = await app.drift();
    if (!report) return { config, state, drift: "unknown" };
    const objects: ObjectView[] = state.inventory.map((e) => {
      const live = report.live.get(e.key);
      if (!live) return { key: e.key, health: "Missing", reason: "NotFound", message: "not in the cluster" };
      const h = healthOf(live);
      return { key: e.key, health: h.status, reason: h.reason, message: h.message };
    });
    return { config, state, drift: { drifted: report.drifted, missing: report.missing, contested: Object.fromEntries(report.contested) }, objects };
  } catch (e) {
    return { config, error: `cannot read ${config.name} in cluster ${config.cluster}: ${message(e)}` };
  }
}

async function readReleases(rt: Runtime, now: Date): Promise<ReleaseReading[]> {
  const out: ReleaseReading[] = [];
  for (const s of rt.releases) {
    const config = s.release;
    try {
      const { state, upcoming } = await s.status(now);
      const r: ReleaseReading = { config, upcoming, ...(state ? { state } : {}) };
      if (config.revision.kind === "head") {
        const head = (await rt.repos.get(config.repo)?.repo.listHeads())?.get(config.branch);
        if (head) r.head = head;
      } else {
        const lagged = config.revision.app;
        const app = rt.apps.find((a) => a.app.name === lagged);
        const cfg = rt.config.apps.find((a) => a.name === lagged);
        const history = app ? (await app.reloadState()).history : cfg ? ((await rt.clusters.get(cfg.cluster)?.store.load(lagged))?.history ?? []) : [];
        r.laggedHistory = history;
      }
      out.push(r);
    } catch (e) {
      out.push({ config, upcoming: [], error: message(e) });
    }
  }
  return out;
}

/**
 * Reads the fleet. Commit metadata is looked up once per sha (a commit never changes) and only
 * from the local git cache or one fetch of the app's branch; a revision that cannot be found shows
 * without subject rather than costing a fetch each round.
 */
export class FleetReader {
  private readonly commits = new Map<string, CommitInfo | null>();

  constructor(
    private readonly rt: Runtime,
    private readonly log: Logger,
  ) {}

  private async commitOf(app: AppReconciler, sha: string, branch: string): Promise<void> {
    if (this.commits.has(sha)) return;
    const repo = this.rt.repos.get(app.app.repo)?.repo;
    if (!repo) return;
    try {
      await repo.ensureCommit(branch, sha);
      this.commits.set(sha, parseCommit(await repo.readCommitObject(sha)) ?? null);
    } catch (e) {
      this.log.debug({ app: app.app.name, revision: sha, err: message(e) }, "dashboard: no commit metadata");
      this.commits.set(sha, null);
    }
  }

  async read(now: () => Date = () => new Date()): Promise<Snapshot> {
    // Bounded: each app is a GET of its state and a LIST per (kind, namespace) of its objects.
    const apps = await mapLimit(this.rt.apps, READ_CONCURRENCY, (a) => readApp(this.rt, a));
    for (const [i, r] of apps.entries()) {
      const rev = r.state?.revision;
      const app = this.rt.apps[i] as AppReconciler;
      if (rev) await this.commitOf(app, rev, r.state?.branch ?? app.app.branch);
    }
    const releases = await readReleases(this.rt, now());
    const commits = new Map<string, CommitInfo>();
    for (const [sha, c] of this.commits) if (c) commits.set(sha, c);
    const digest = createHash("sha256")
      .update(JSON.stringify({ apps, releases: releases.map((r) => ({ ...r, upcoming: r.upcoming.map((d) => d.toISOString()) })), commits: [...commits.keys()].sort() }))
      .digest("hex");
    return { at: now().toISOString(), apps, releases, commits, digest };
  }
}
