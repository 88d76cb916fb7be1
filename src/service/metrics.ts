// plumber's Prometheus metrics: one registry, only series that something updates. Counters fed
// from counters that already exist elsewhere (KubeClient.stats, RepoConnection.requests) are
// brought up to date at scrape time by the increase since the last scrape, so they stay
// monotonic across runtime rebuilds (config reload, a new leader term). The rest is fed by
// observe(): the one place an observed event becomes series and labels.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RequestStats, Verb } from "../kube/client.js";
import type { ObservedEvent, Observer } from "../observe/events.js";

export const METRIC_NAMES = {
  reconciles: "plumber_reconcile_total",
  reconcileSeconds: "plumber_reconcile_duration_seconds",
  gitRequests: "plumber_git_requests_total",
  gitFailures: "plumber_git_request_failures_total",
  kubeRequests: "plumber_kube_api_requests_total",
  kubeWrites: "plumber_kube_api_writes_total",
  kubeDryRuns: "plumber_kube_api_dry_runs_total",
  objectsApplied: "plumber_objects_applied_total",
  objectsPruned: "plumber_objects_pruned_total",
  driftRepairs: "plumber_drift_repairs_total",
  leader: "plumber_leader",
  shardMembers: "plumber_shard_members",
  shardOwnedApps: "plumber_shard_owned_apps",
  shardAssignedApps: "plumber_shard_assigned_apps",
  reloads: "plumber_config_reloads_total",
  events: "plumber_events_total",
  sourceFailing: "plumber_source_failing",
  sourceFailingSince: "plumber_source_failing_since_timestamp_seconds",
  sourceLastListing: "plumber_source_last_listing_timestamp_seconds",
  contestedObjects: "plumber_contested_objects",
  repairsDeferred: "plumber_drift_repairs_deferred_total",
} as const;

interface KubeSource {
  cluster: string;
  stats: RequestStats;
  last: { total: number; writes: number; dryRuns: number; byVerb: Record<Verb, number> };
}

interface RepoSource {
  repo: string;
  requests: { total: number; failed: number };
  last: { total: number; failed: number };
}

export class PlumberMetrics implements Observer {
  readonly registry = new Registry();
  private readonly reconciles: Counter<"app" | "result">;
  private readonly reconcileSeconds: Histogram<"app" | "result">;
  private readonly gitRequests: Counter<"repo">;
  private readonly gitFailures: Counter<"repo">;
  private readonly kubeRequests: Counter<"cluster" | "verb">;
  private readonly kubeWrites: Counter<"cluster">;
  private readonly kubeDryRuns: Counter<"cluster">;
  private readonly objectsApplied: Counter<"app" | "action">;
  private readonly objectsPruned: Counter<"app">;
  private readonly driftRepairs: Counter<"app">;
  private readonly leader: Gauge;
  /** Registered on first use: only a sharded replica has them. */
  private shard?: { members: Gauge; owned: Gauge; assigned: Gauge };
  private readonly reloads: Counter<"result">;
  private readonly events: Counter<"reason" | "outcome">;
  private readonly sourceFailing: Gauge<"repo">;
  private readonly sourceFailingSince: Gauge<"repo">;
  private readonly sourceLastListing: Gauge<"repo">;
  private readonly contestedObjects: Gauge<"app">;
  private readonly repairsDeferred: Counter<"app">;
  private readonly kubeSources = new Set<KubeSource>();
  private readonly repoSources = new Set<RepoSource>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.reconciles = new Counter({
      name: METRIC_NAMES.reconciles,
      help: "App reconciles, by app and result (unchanged, applied, repaired, failed, held).",
      labelNames: ["app", "result"],
      registers,
    });
    this.reconcileSeconds = new Histogram({
      name: METRIC_NAMES.reconcileSeconds,
      help: "Duration of one app reconcile (drift check, or render, plan, apply, prune and state record), by app and result.",
      labelNames: ["app", "result"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.gitRequests = new Counter({ name: METRIC_NAMES.gitRequests, help: "Git HTTP requests sent, by repo.", labelNames: ["repo"], registers });
    this.gitFailures = new Counter({
      name: METRIC_NAMES.gitFailures,
      help: "Git HTTP requests that failed (no answer, or an HTTP status of 400 or more), by repo.",
      labelNames: ["repo"],
      registers,
    });
    this.kubeRequests = new Counter({
      name: METRIC_NAMES.kubeRequests,
      help: "Kubernetes API requests sent, by cluster and verb (get, list, create, update, patch, delete); dry-runs included.",
      labelNames: ["cluster", "verb"],
      registers,
    });
    this.kubeWrites = new Counter({
      name: METRIC_NAMES.kubeWrites,
      help: "Kubernetes API requests that change something (not GETs, not dry-runs), by cluster.",
      labelNames: ["cluster"],
      registers,
    });
    this.kubeDryRuns = new Counter({ name: METRIC_NAMES.kubeDryRuns, help: "Server-side dry-run requests, by cluster.", labelNames: ["cluster"], registers });
    this.objectsApplied = new Counter({
      name: METRIC_NAMES.objectsApplied,
      help: "Objects written with server-side apply, by app and action (created, configured).",
      labelNames: ["app", "action"],
      registers,
    });
    this.objectsPruned = new Counter({ name: METRIC_NAMES.objectsPruned, help: "Objects deleted because they left the repo, by app.", labelNames: ["app"], registers });
    this.driftRepairs = new Counter({
      name: METRIC_NAMES.driftRepairs,
      help: "Reconciles that re-applied objects changed or deleted in the cluster, by app.",
      labelNames: ["app"],
      registers,
    });
    this.leader = new Gauge({ name: METRIC_NAMES.leader, help: "1 while this replica is the leader (the only one that writes), else 0.", registers });
    this.reloads = new Counter({
      name: METRIC_NAMES.reloads,
      help: "Config reloads, by result (applied, refused: the new config was invalid and the old one kept running).",
      labelNames: ["result"],
      registers,
    });
    this.events = new Counter({
      name: METRIC_NAMES.events,
      help: "Kubernetes Events, by reason and outcome (emitted, suppressed by rate limit or duplicate, failed).",
      labelNames: ["reason", "outcome"],
      registers,
    });
    this.sourceFailing = new Gauge({
      name: METRIC_NAMES.sourceFailing,
      help: "1 while a repo's ref listing fails (clusters keep their current revision), else 0.",
      labelNames: ["repo"],
      registers,
    });
    this.sourceFailingSince = new Gauge({
      name: METRIC_NAMES.sourceFailingSince,
      help: "While a repo's ref listing fails: when the outage began (Unix seconds).",
      labelNames: ["repo"],
      registers,
    });
    this.sourceLastListing = new Gauge({
      name: METRIC_NAMES.sourceLastListing,
      help: "When a repo's ref listing last worked (Unix seconds).",
      labelNames: ["repo"],
      registers,
    });
    this.contestedObjects = new Gauge({
      name: METRIC_NAMES.contestedObjects,
      help: "Objects of an app whose fields another field manager keeps taking back (repaired with backoff).",
      labelNames: ["app"],
      registers,
    });
    this.repairsDeferred = new Counter({
      name: METRIC_NAMES.repairsDeferred,
      help: "Drift repairs of contested objects put off by the backoff, by app.",
      labelNames: ["app"],
      registers,
    });
  }

  /**
   * A reconcile's outcome is its `result` label (a reconcile cut short by shutdown or reload is
   * not counted); each object written counts by action; each ref listing sets the source gauges.
   */
  observe(e: ObservedEvent): void {
    switch (e.type) {
      case "cycle":
        // What drift review saw happened, even in a cycle cut short afterwards.
        if (e.contest) this.observeContest(e.app, e.contest.contested, e.contest.deferred);
        if (e.outcome !== "aborted") this.observeReconcile(e.app, e.outcome, e.durationMs / 1000);
        return;
      case "object":
        this.observeEntry(e.app, e.entry.action);
        return;
      case "source":
        this.observeSource(e.repo, e.health);
        return;
      default:
        return;
    }
  }

  /** After each ref listing of a repo. */
  observeSource(repo: string, s: { failingSince?: number; lastGoodAt?: number }): void {
    this.sourceFailing.set({ repo }, s.failingSince === undefined ? 0 : 1);
    if (s.failingSince === undefined) this.sourceFailingSince.remove({ repo });
    else this.sourceFailingSince.set({ repo }, s.failingSince / 1000);
    if (s.lastGoodAt !== undefined) this.sourceLastListing.set({ repo }, s.lastGoodAt / 1000);
  }

  /** After each drift check of an app: objects whose fields another manager keeps taking, and repairs put off. */
  observeContest(app: string, contested: number, deferred: number): void {
    this.contestedObjects.set({ app }, contested);
    if (deferred > 0) this.repairsDeferred.inc({ app }, deferred);
  }

  observeReconcile(app: string, result: string, seconds: number): void {
    this.reconciles.inc({ app, result });
    this.reconcileSeconds.observe({ app, result }, seconds);
    if (result === "repaired") this.driftRepairs.inc({ app });
  }

  /** Per object, from the engine's onEntry. */
  observeEntry(app: string, action: string): void {
    if (action === "created" || action === "configured") this.objectsApplied.inc({ app, action });
    else if (action === "pruned") this.objectsPruned.inc({ app });
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  setShard(members: number, ownedApps: number, assignedApps: number): void {
    const registers = [this.registry];
    this.shard ??= {
      members: new Gauge({ name: METRIC_NAMES.shardMembers, help: "With --shard: the replicas this one sees alive (itself included).", registers }),
      owned: new Gauge({ name: METRIC_NAMES.shardOwnedApps, help: "With --shard: the apps this replica holds the Lease of (the only ones it writes).", registers }),
      assigned: new Gauge({ name: METRIC_NAMES.shardAssignedApps, help: "With --shard: the apps the assignment gives this replica; above owned while their old owners hand them over.", registers }),
    };
    this.shard.assigned.set(assignedApps);
    this.shard.members.set(members);
    this.shard.owned.set(ownedApps);
  }

  observeReload(result: "applied" | "refused"): void {
    this.reloads.inc({ result });
  }

  observeEvent(reason: string, outcome: "emitted" | "suppressed" | "failed"): void {
    this.events.inc({ reason, outcome });
  }

  /** Follows a client's request counters from now on; returns the function that stops following. */
  trackKube(cluster: string, stats: RequestStats): () => void {
    const src: KubeSource = { cluster, stats, last: { total: 0, writes: 0, dryRuns: 0, byVerb: { get: 0, list: 0, create: 0, update: 0, patch: 0, delete: 0 } } };
    this.kubeSources.add(src);
    this.syncKube(src);
    return () => {
      this.syncKube(src);
      this.kubeSources.delete(src);
    };
  }

  trackRepo(repo: string, requests: { total: number; failed: number }): () => void {
    const src: RepoSource = { repo, requests, last: { total: 0, failed: 0 } };
    this.repoSources.add(src);
    this.syncRepo(src);
    return () => {
      this.syncRepo(src);
      this.repoSources.delete(src);
    };
  }

  private syncKube(src: KubeSource): void {
    const now = src.stats.snapshot();
    for (const verb of Object.keys(now.byVerb) as Verb[]) {
      const d = now.byVerb[verb] - src.last.byVerb[verb];
      if (d > 0) this.kubeRequests.inc({ cluster: src.cluster, verb }, d);
    }
    this.kubeWrites.inc({ cluster: src.cluster }, Math.max(0, now.writes - src.last.writes));
    this.kubeDryRuns.inc({ cluster: src.cluster }, Math.max(0, now.dryRuns - src.last.dryRuns));
    src.last = now;
  }

  private syncRepo(src: RepoSource): void {
    const now = { total: src.requests.total, failed: src.requests.failed };
    this.gitRequests.inc({ repo: src.repo }, Math.max(0, now.total - src.last.total));
    this.gitFailures.inc({ repo: src.repo }, Math.max(0, now.failed - src.last.failed));
    src.last = now;
  }

  /** The exposition text, counters fed from elsewhere brought up to date first. */
  async text(): Promise<string> {
    for (const s of this.kubeSources) this.syncKube(s);
    for (const s of this.repoSources) this.syncRepo(s);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
