import type { Logger } from "../log.js";
import { resolveBranch } from "../branches/resolve.js";
import type { KubeClient } from "../kube/client.js";
import type { RepoConnection } from "../connect/repo.js";
import type { Observer } from "../observe/events.js";
import { sleep } from "../util/pool.js";
import { clusterSourceStore, SourceHealth, SourceRecords, type SourceStore, type SourceTransition } from "../state/source.js";
import type { AppReconciler, CycleResult } from "./app.js";

export interface PollResult {
  repo: string;
  /** The ref listing failed: nothing was fetched and no app moved. */
  error?: string;
  apps: { app: string; result: CycleResult }[];
}

export interface PollerOptions {
  /** Where each app records its source's failure (its state ConfigMap); without it nothing is recorded. */
  sourceStore?: SourceStore;
  /**
   * Told a "source" event after every listing (metrics), with the apps' records written this
   * cycle (Events: once per outage and app, even across restarts).
   */
  observer?: Observer;
  now?: () => number;
}

const MAX_BACKOFF_FACTOR = 10;
const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * One repo's loop: a single ref listing per interval, however many apps and branches use the
 * repo; apps whose branch did not move only check for drift.
 */
export class RepoPoller {
  private failures = 0;
  readonly health: SourceHealth;
  private readonly records?: SourceRecords;

  constructor(
    private readonly conn: RepoConnection,
    private readonly apps: AppReconciler[],
    private readonly log: Logger,
    private readonly opts: PollerOptions = {},
  ) {
    this.health = new SourceHealth(opts.now);
    if (opts.sourceStore) this.records = new SourceRecords(opts.sourceStore, this.health, log.child({ repo: conn.config.name }));
  }

  /** Records the source's state in each app's status on transitions only (and once per process). */
  private async reportSource(transition: SourceTransition | undefined): Promise<void> {
    const repo = this.conn.config.name;
    const apps = this.apps.map((a) => a.app.name);
    const changes = this.records ? await this.records.sync(apps) : [];
    if (transition === "failing") this.log.error({ repo, err: this.health.error, since: new Date(this.health.failingSince ?? 0).toISOString() }, "source failing: listing refs fails; clusters keep their current revision");
    if (transition === "recovered") this.log.info({ repo }, "source recovered: listing refs works again");
    const clusterOf = (name: string): string => this.apps.find((a) => a.app.name === name)?.app.cluster ?? "";
    const { failingSince, lastGoodAt, error } = this.health;
    this.opts.observer?.observe({
      type: "source",
      repo,
      apps,
      health: { failingSince, lastGoodAt, error },
      ...(transition ? { transition } : {}),
      changes: changes.map((c) => ({ ...c, cluster: clusterOf(c.app) })),
    });
  }

  async cycle(signal?: AbortSignal): Promise<PollResult> {
    const repo = this.conn.config.name;
    let heads: Map<string, string>;
    try {
      heads = await this.conn.repo.listHeads();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.failures++;
      this.log.warn({ repo, err: error, failures: this.failures }, "listing refs failed; clusters keep their current revision");
      await this.reportSource(this.health.failed(error));
      return { repo, error, apps: [] };
    }
    const recovered = this.health.listed();
    // A branch pattern picks its branch from this same listing.
    const followedBy = new Map(this.apps.map((a) => [a, resolveBranch(a.app, heads)]));
    for (const [app, { branch, head }] of followedBy) if (branch && head) this.records?.rememberHeads(app.app.name, { [branch]: head });
    await this.reportSource(recovered);
    const results: PollResult["apps"] = [];
    let failed = false;
    for (const app of this.apps) {
      let result: CycleResult;
      const followed = followedBy.get(app) ?? resolveBranch(app.app, heads);
      try {
        result = await app.reconcile(followed.head, signal, followed.branch);
      } catch (e) {
        if (signal?.aborted) break;
        // Reaching the cluster failed (state load, drift LIST): transient by nature.
        const message = e instanceof Error ? e.message : String(e);
        this.log.error({ app: app.app.name, err: message }, "reconcile failed");
        result = { kind: "failed", revision: followed.head ?? "", message, permanent: false };
      }
      if (result.kind === "failed" && !result.permanent) failed = true;
      results.push({ app: app.app.name, result });
    }
    this.failures = failed ? this.failures + 1 : 0;
    return { repo, apps: results };
  }

  /** The wait before the next cycle: the interval with ±10% jitter, backing off after failures. */
  nextDelay(random: () => number = Math.random): number {
    const interval = this.conn.config.intervalMs;
    const factor = Math.min(2 ** this.failures, MAX_BACKOFF_FACTOR);
    const base = this.failures > 0 ? Math.min(interval * factor, Math.max(MAX_BACKOFF_MS, interval)) : interval;
    return Math.round(base * (0.9 + 0.2 * random()));
  }

  async run(signal: AbortSignal): Promise<void> {
    // Spread repos out at start so they do not all poll at once.
    await sleep(Math.round(Math.random() * Math.min(this.conn.config.intervalMs, 5000) * 0.2), signal);
    while (!signal.aborted) {
      await this.cycle(signal);
      await sleep(this.nextDelay(), signal);
    }
  }
}

/** What repoPoller needs of a runtime (src/reconcile/runtime.ts builds one). */
export interface PollerRuntime {
  config: { state: { namespace: string } };
  repos: Map<string, RepoConnection>;
  clusters: Map<string, { client: KubeClient }>;
  apps: AppReconciler[];
  /** Told of the source's state after every listing, unless opts.observer says otherwise. */
  observer?: Observer;
}

/** The poller of one repo of a runtime, recording source failures in its apps' state. */
export function repoPoller(rt: PollerRuntime, repo: string, log: Logger, opts: Omit<PollerOptions, "sourceStore"> = {}): RepoPoller {
  const conn = rt.repos.get(repo);
  if (!conn) throw new Error(`no repo named ${repo}`);
  const apps = rt.apps.filter((a) => a.app.repo === repo);
  const sourceStore = clusterSourceStore((name) => {
    const app = apps.find((a) => a.app.name === name);
    const cluster = app && rt.clusters.get(app.app.cluster);
    return cluster ? { client: cluster.client, namespace: rt.config.state.namespace } : undefined;
  });
  return new RepoPoller(conn, apps, log, { observer: rt.observer, ...opts, sourceStore });
}
