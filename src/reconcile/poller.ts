import type { Logger } from "../log.js";
import { resolveBranch } from "../branches/resolve.js";
import type { KubeClient } from "../kube/client.js";
import type { RepoConnection } from "../connect/repo.js";
import type { Observer } from "../observe/events.js";
import { mapLimit, sleep } from "../util/pool.js";
import { clusterSourceStore, SourceHealth, SourceRecords, type SourceStore, type SourceTransition } from "../state/source.js";
import type { AppReconciler, CycleResult } from "./app.js";
import { AppBackoff, backoffMs, waves } from "./schedule.js";

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
  /** Sharding: the apps this replica reconciles now (the others are their owners' to run); all when omitted. */
  owns?: (app: string) => boolean;
  /** Runs one app's turn (sharding: in the app's write context, so the write gate knows whose writes they are). */
  turn?: <T>(app: string, work: () => Promise<T>) => Promise<T>;
}

/** How one round runs: run() defers waits and honours each app's backoff; a cycle by hand (apply --once, tests) does neither. */
export interface RoundOptions {
  /** Verify looks once per round and leaves the app Verifying (Cycle.deferWaits). */
  deferWaits?: boolean;
  /** Apps backing off after a transient failure sit this round out. */
  backoff?: boolean;
}

/** For a RepoConfig made by hand without one (the schema's default is the same). Two apps of a repo
 *  claiming one object may run at once: ownership claims (src/engine/claims.ts) let only one take it. */
const DEFAULT_APP_CONCURRENCY = 4;

/**
 * One repo's loop: a single ref listing per interval, however many apps and branches use the
 * repo; apps whose branch did not move only check for drift.
 */
export class RepoPoller {
  /** Failed listings in a row: the repo's own backoff. */
  private failures = 0;
  readonly health: SourceHealth;
  private readonly records?: SourceRecords;
  private readonly backoff: AppBackoff;

  constructor(
    private readonly conn: RepoConnection,
    private readonly apps: AppReconciler[],
    private readonly log: Logger,
    private readonly opts: PollerOptions = {},
  ) {
    this.health = new SourceHealth(opts.now);
    this.backoff = new AppBackoff(conn.config.intervalMs, opts.now ?? Date.now);
    if (opts.sourceStore) this.records = new SourceRecords(opts.sourceStore, this.health, log.child({ repo: conn.config.name }));
  }

  /** Records the source's state in each app's status on transitions only (and once per process). */
  private async reportSource(transition: SourceTransition | undefined, mine: AppReconciler[]): Promise<void> {
    const repo = this.conn.config.name;
    const apps = mine.map((a) => a.app.name);
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

  /**
   * One round: one ref listing, then every app that is not backing off, handed to a pool of
   * `concurrency` workers wave by wave (dependencies before dependents). Results keep app order.
   */
  async cycle(signal?: AbortSignal, round: RoundOptions = {}): Promise<PollResult> {
    const repo = this.conn.config.name;
    const owns = this.opts.owns;
    const mine = owns ? this.apps.filter((a) => owns(a.app.name)) : this.apps;
    // A replica that owns none of the repo's apps has no reason to list it.
    if (owns && mine.length === 0) return { repo, apps: [] };
    let heads: Map<string, string>;
    try {
      heads = await this.conn.repo.listHeads();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.failures++;
      this.log.warn({ repo, err: error, failures: this.failures }, "listing refs failed; clusters keep their current revision");
      await this.reportSource(this.health.failed(error), mine);
      return { repo, error, apps: [] };
    }
    const recovered = this.health.listed();
    // A branch pattern picks its branch from this same listing.
    const followedBy = new Map(mine.map((a) => [a, resolveBranch(a.app, heads)]));
    for (const [app, { branch, head }] of followedBy) if (branch && head) this.records?.rememberHeads(app.app.name, { [branch]: head });
    await this.reportSource(recovered, mine);
    const due = mine.filter((a) => !(round.backoff && this.backoff.waiting(a.app.name)));
    const done = new Map<AppReconciler, CycleResult>();
    // A promoted app goes after its source, so it sees what the source did this round.
    for (const wave of waves(due, (a) => a.app.name, (a) => (a.app.promote ? [...a.app.dependsOn, a.app.promote.from] : a.app.dependsOn))) {
      if (signal?.aborted) break;
      await mapLimit(wave, this.conn.config.concurrency || DEFAULT_APP_CONCURRENCY, async (app) => {
        if (signal?.aborted) return;
        const followed = followedBy.get(app) ?? resolveBranch(app.app, heads);
        let result: CycleResult;
        try {
          const work = (): Promise<CycleResult> => app.reconcile(followed.head, signal, followed.branch, { deferWaits: round.deferWaits ?? false });
          result = await (this.opts.turn ? this.opts.turn(app.app.name, work) : work());
        } catch (e) {
          if (signal?.aborted) return;
          // Reaching the cluster failed (state load, drift LIST): transient by nature.
          const message = e instanceof Error ? e.message : String(e);
          this.log.error({ app: app.app.name, err: message, failures: this.backoff.count(app.app.name) + 1 }, "reconcile failed");
          result = { kind: "failed", revision: followed.head ?? "", message, permanent: false };
        }
        this.backoff.record(app.app.name, result.kind === "failed" && !result.permanent);
        done.set(app, result);
      });
    }
    this.failures = 0;
    const results: PollResult["apps"] = [];
    for (const app of this.apps) {
      const result = done.get(app);
      if (result) results.push({ app: app.app.name, result });
    }
    return { repo, apps: results };
  }

  /** The wait before the next cycle: the interval with ±10% jitter, backing off after failed listings (an app's failures back off that app only). */
  nextDelay(random: () => number = Math.random): number {
    return Math.round(backoffMs(this.conn.config.intervalMs, this.failures) * (0.9 + 0.2 * random()));
  }

  async run(signal: AbortSignal): Promise<void> {
    // Spread repos out at start so they do not all poll at once.
    await sleep(Math.round(Math.random() * Math.min(this.conn.config.intervalMs, 5000) * 0.2), signal);
    const now = this.opts.now ?? Date.now;
    while (!signal.aborted) {
      const started = now();
      await this.cycle(signal, { deferWaits: true, backoff: true });
      await sleep(untilNextListing(this.nextDelay(), now() - started), signal);
    }
  }
}

/**
 * The interval runs from listing to listing: the cycle's own time comes out of the wait, so a
 * commit waits half an interval on average however long the apps take to apply. A cycle longer
 * than the interval still leaves a tenth of it before the next listing, so a slow app never
 * turns the loop into back-to-back listings.
 */
export function untilNextListing(delayMs: number, cycleMs: number): number {
  return Math.max(delayMs - Math.max(0, cycleMs), Math.round(delayMs / 10));
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
