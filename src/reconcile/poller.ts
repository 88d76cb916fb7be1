import type { Logger } from "../log.js";
import { resolveBranch } from "../branches/resolve.js";
import type { KubeClient } from "../kube/client.js";
import type { RepoConnection } from "../connect/repo.js";
import type { Observer } from "../observe/events.js";
import { mapLimit, sleep } from "../util/pool.js";
import { clusterSourceStore, SourceHealth, SourceRecords, type SourceStore, type SourceTransition } from "../state/source.js";
import type { AppReconciler, CycleResult } from "./app.js";
import { AppBackoff, backoffMs, waves } from "./schedule.js";
import { PathTrees, WorkQueue } from "./queue.js";
import { KUSTOMIZATION_FILES } from "../kustomize/closure.js";

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
  /** The app paths' tree ids by commit, so an app at an older revision is compared without reading it again. */
  private readonly trees = new PathTrees();

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

  private mine(): AppReconciler[] {
    const owns = this.opts.owns;
    return owns ? this.apps.filter((a) => owns(a.app.name)) : this.apps;
  }

  /** One ref listing, its outcome recorded (source health, the apps' records), each app's branch resolved from it. */
  private async list(mine: AppReconciler[]): Promise<{ error: string } | { heads: Map<string, string>; followedBy: Map<AppReconciler, Followed> }> {
    const repo = this.conn.config.name;
    let heads: Map<string, string>;
    try {
      heads = await this.conn.repo.listHeads();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.failures++;
      this.log.warn({ repo, err: error, failures: this.failures }, "listing refs failed; clusters keep their current revision");
      await this.reportSource(this.health.failed(error), mine);
      return { error };
    }
    this.failures = 0;
    const recovered = this.health.listed();
    // A branch pattern picks its branch from this same listing.
    const followedBy = new Map(mine.map((a) => [a, resolveBranch(a.app, heads)]));
    for (const [app, { branch, head }] of followedBy) if (branch && head) this.records?.rememberHeads(app.app.name, { [branch]: head });
    await this.reportSource(recovered, mine);
    return { heads, followedBy };
  }

  /** One app's reconcile as the pool runs it: a failure to reach the cluster is a transient failed result, and counts toward its backoff. */
  private async reconcileOne(app: AppReconciler, followed: Followed, signal: AbortSignal | undefined, deferWaits: boolean): Promise<CycleResult | undefined> {
    let result: CycleResult;
    try {
      const work = (): Promise<CycleResult> => app.reconcile(followed.head, signal, followed.branch, { deferWaits });
      result = await (this.opts.turn ? this.opts.turn(app.app.name, work) : work());
    } catch (e) {
      if (signal?.aborted) return undefined;
      // Reaching the cluster failed (state load, drift LIST): transient by nature.
      const message = e instanceof Error ? e.message : String(e);
      this.log.error({ app: app.app.name, err: message, failures: this.backoff.count(app.app.name) + 1 }, "reconcile failed");
      result = { kind: "failed", revision: followed.head ?? "", message, permanent: false };
    }
    this.backoff.record(app.app.name, result.kind === "failed" && !result.permanent);
    return result;
  }

  /**
   * One round: one ref listing, then every app that is not backing off, handed to a pool of
   * `concurrency` workers wave by wave (dependencies before dependents). Results keep app order.
   */
  async cycle(signal?: AbortSignal, round: RoundOptions = {}): Promise<PollResult> {
    const repo = this.conn.config.name;
    const mine = this.mine();
    // A replica that owns none of the repo's apps has no reason to list it.
    if (this.opts.owns && mine.length === 0) return { repo, apps: [] };
    const listing = await this.list(mine);
    if ("error" in listing) return { repo, error: listing.error, apps: [] };
    const { heads, followedBy } = listing;
    const due = mine.filter((a) => !(round.backoff && this.backoff.waiting(a.app.name)));
    const done = new Map<AppReconciler, CycleResult>();
    for (const wave of waves(due, (a) => a.app.name, goesAfter)) {
      if (signal?.aborted) break;
      await mapLimit(wave, this.concurrency, async (app) => {
        if (signal?.aborted) return;
        const result = await this.reconcileOne(app, followedBy.get(app) ?? resolveBranch(app.app, heads), signal, round.deferWaits ?? false);
        if (result) done.set(app, result);
      });
    }
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

  /**
   * The daemon's loop: a listing every interval (from listing to listing), whatever the apps are
   * doing, and a pool of workers fed from a queue (queue.ts), so an app whose rendered input
   * changed is applied at the next listing even while its siblings' drift looks of the one before
   * are still under way. Waits are deferred and each app backs off on its own.
   */
  async run(signal: AbortSignal): Promise<void> {
    // Spread repos out at start so they do not all poll at once.
    await sleep(Math.round(Math.random() * Math.min(this.conn.config.intervalMs, 5000) * 0.2), signal);
    const now = this.opts.now ?? Date.now;
    const queue = new WorkQueue<AppReconciler, Followed>({
      concurrency: this.concurrency,
      signal,
      name: (a) => a.app.name,
      dependsOn: goesAfter,
      due: (a) => (this.opts.owns?.(a.app.name) ?? true) && !this.backoff.waiting(a.app.name),
      run: async (a, followed) => void (await this.reconcileOne(a, followed, signal, true)),
    });
    while (!signal.aborted) {
      const started = now();
      const mine = this.mine();
      if (!(this.opts.owns && mine.length === 0)) {
        const listing = await this.list(mine);
        if (!("error" in listing)) {
          const changed = await this.inputsChanged(listing.followedBy);
          queue.listed([...listing.followedBy].map(([app, followed]) => ({ item: app, work: followed, moved: (h) => h.head !== followed.head, first: changed.has(app) })));
        }
      }
      await sleep(untilNextListing(this.nextDelay(), now() - started), signal);
    }
    await queue.drained();
  }

  private get concurrency(): number {
    return this.conn.config.concurrency || DEFAULT_APP_CONCURRENCY;
  }

  /**
   * The apps whose listed head changes what they render from the revision they are at: the tree
   * of the app's path differs, or cannot be compared (not cached, not there). A kustomization may
   * read beyond its path, so it always counts as changed. Fetches the head (a render would anyway).
   */
  private async inputsChanged(followedBy: Map<AppReconciler, Followed>): Promise<Set<AppReconciler>> {
    const changed = new Set<AppReconciler>();
    const compare: [AppReconciler, string, string][] = [];
    for (const [app, { branch, head }] of followedBy) {
      const at = app.appliedRevision;
      if (!head || at === head) continue;
      if (!at || !branch) changed.add(app);
      else compare.push([app, at, head]);
    }
    const repo = this.conn.repo;
    const byHead = new Map<string, [AppReconciler, string][]>();
    for (const [app, at, head] of compare) byHead.set(head, [...(byHead.get(head) ?? []), [app, at]]);
    for (const [head, apps] of byHead) {
      try {
        await repo.ensureCommit(followedBy.get(apps[0]![0])?.branch as string, head);
        const after = await this.trees.of(repo, head, apps.map(([a]) => a.app.path));
        const befores = new Map<string, Map<string, { oid: string; names: string[] } | undefined>>();
        for (const [app, at] of apps) {
          if (!befores.has(at)) befores.set(at, await this.trees.of(repo, at, apps.filter(([, x]) => x === at).map(([a]) => a.app.path)));
          const b = befores.get(at)?.get(app.app.path);
          const h = after.get(app.app.path);
          if (!b || !h || h.names.some((n) => (KUSTOMIZATION_FILES as readonly string[]).includes(n)) || b.oid !== h.oid) changed.add(app);
        }
      } catch {
        // The apps' own reconciles meet the same failure and report it.
        for (const [app] of apps) changed.add(app);
      }
    }
    return changed;
  }
}

type Followed = ReturnType<typeof resolveBranch>;

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

/** The apps an app goes after: its dependencies, and a promoted app's source, so it sees what the source just did. */
function goesAfter(a: AppReconciler): string[] {
  return a.app.promote ? [...a.app.dependsOn, a.app.promote.from] : a.app.dependsOn;
}
