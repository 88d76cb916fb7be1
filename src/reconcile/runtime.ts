// The assembly: config → connections (src/connect) → one AppReconciler per app, one
// ReleaseScheduler per release, the notifier; and one Observer told everything they do. Nothing
// below this module knows how the parts are put together.
import type { AppConfig, ClusterConfig, PlumberConfig, RepoConfig } from "../config/types.js";
import { checkSelfConfig } from "../config/selfconfig.js";
import { connectCluster, type ClusterConnection } from "../connect/cluster.js";
import { connectRepo, defaultCacheDir, type RepoConnection } from "../connect/repo.js";
import { Engine, type Plan, type SyncOutcome, type SyncRequest } from "../engine/engine.js";
import type { Logger } from "../log.js";
import { fanOut, type Observer } from "../observe/events.js";
import type { ReleaseScheduler } from "../releases/scheduler.js";
import { buildReleaseSchedulers } from "../releases/wiring.js";
import { buildNotifier, type Notifier } from "../notify/notifier.js";
import { reservedObjectGuard } from "../state/guard.js";
import { AppReconciler } from "./app.js";
import { systemClock, type Clock } from "./clock.js";
import { promotionSource } from "../promote/source.js";
import { dependencyOrder } from "../deps/graph.js";
import { logKustomizeIsolation } from "../kustomize/render.js";
import { CommitVerifier } from "../signing/verify.js";
import { FileProblemError } from "../types.js";

export interface Runtime {
  config: PlumberConfig;
  clusters: Map<string, ClusterConnection>;
  repos: Map<string, RepoConnection>;
  apps: AppReconciler[];
  /** Scheduled releases (src/releases); none when only some apps were asked for. */
  releases: ReleaseScheduler[];
  /** Notification sinks (flushed on close). */
  notifier: Notifier;
  /** Told every deploy, cycle, object, release and source event: the caller's observer and the notifier. */
  observer: Observer;
  close(): void;
}

export interface RuntimeOptions {
  log: Logger;
  cacheDir?: string;
  /** Only these apps (by name); all when omitted. */
  only?: string[];
  /** Told everything the apps, their engines, the pollers and the release schedulers do (metrics, Kubernetes Events); notifications are added from the config. */
  observer?: Observer;
  /** The leader-election Lease, which no app may deploy; without it a Lease named "plumber" is refused in every namespace. */
  lease?: { name: string; namespace?: string };
  /** The reconcilers' clock (timestamps, sync windows, gates); tests pass one they move by hand. */
  clock?: Clock;
}

/** The Engine with plumber's own config validated before it is applied (src/config/selfconfig.ts). */
class SelfConfigGuardedEngine extends Engine {
  override async sync(req: SyncRequest): Promise<SyncOutcome> {
    refuseInvalidSelfConfig(req);
    return super.sync(req);
  }

  override async plan(req: SyncRequest): Promise<Plan> {
    refuseInvalidSelfConfig(req);
    return super.plan(req);
  }
}

function refuseInvalidSelfConfig(req: SyncRequest): void {
  const problems = checkSelfConfig(req.manifests);
  if (problems.length > 0) throw new FileProblemError(problems);
}

/** Wires config to engine: one git connection per repo, one kube connection per cluster. */
export async function buildRuntime(config: PlumberConfig, opts: RuntimeOptions): Promise<Runtime> {
  const apps = opts.only ? config.apps.filter((a) => opts.only?.includes(a.name)) : config.apps;
  if (opts.only) {
    const unknown = opts.only.filter((n) => !config.apps.some((a) => a.name === n));
    if (unknown.length) throw new Error(`no app named ${unknown.join(", ")} in ${config.file}`);
  }
  const repos = new Map<string, RepoConnection>();
  const clusters = new Map<string, ClusterConnection>();
  for (const app of apps) {
    if (!repos.has(app.repo)) repos.set(app.repo, await connectRepo(repoOf(config, app), opts.cacheDir ?? defaultCacheDir()));
    if (!clusters.has(app.cluster)) clusters.set(app.cluster, await connectCluster(clusterOf(config, app), config.state.namespace));
    // A promoted app reads its source's state in the source's cluster.
    const source = app.promote && config.apps.find((a) => a.name === app.promote?.from);
    if (source && !clusters.has(source.cluster)) clusters.set(source.cluster, await connectCluster(clusterOf(config, source), config.state.namespace));
  }
  await logKustomizeIsolation(config.kustomize, opts.log);
  const notifier = await buildNotifier(config, opts.log);
  const observer = fanOut([notifier, ...(opts.observer ? [opts.observer] : [])], (e) =>
    opts.log.warn({ err: e instanceof Error ? e.message : String(e) }, "an observer failed; the others were told"),
  );
  const byName = new Map<string, AppReconciler>();
  const verifiers = new Map<string, CommitVerifier>();
  for (const [name, conn] of repos) if (conn.config.verify) verifiers.set(name, new CommitVerifier(conn.repo, conn.config.verify.keysFile, `repos[${name}].verify.keysFile`));
  // Whatever an app's namespace policy, plumber's own state is out of its reach.
  const objectGuard = reservedObjectGuard({ stateNamespace: config.state.namespace, lease: opts.lease });
  // Dependencies first, so a dependency's new revision is applied before its dependents look at it.
  const reconcilers = dependencyOrder(apps, (a) => a.name, followsApps).map((app) => {
    const cluster = clusters.get(app.cluster) as ClusterConnection;
    const engine = (hashKey: Uint8Array | undefined): Engine => new SelfConfigGuardedEngine({
      hashKey,
      client: cluster.client,
      discovery: cluster.discovery,
      claims: cluster.claims,
      concurrency: app.applyConcurrency,
      // A drift look of the last round stands in for the LIST a commit's sync would start. The
      // sync starts a round after the look, plus the listing and fetch of the new head: one
      // interval is not enough, and the look of the round before last is older than two.
      freshListMs: 2 * (repos.get(app.repo)?.config.intervalMs ?? 0),
      onEntry: (e) => {
        const fields = { app: app.name, cluster: app.cluster, object: e.subject, action: e.action };
        if (e.action === "failed") opts.log.warn({ ...fields, err: e.message }, `${e.subject} ${e.action}`);
        else opts.log.info(fields, `${e.subject} ${e.action}`);
        if (e.warnings?.length) opts.log.warn({ ...fields, warnings: e.warnings }, `${e.subject}: the apiserver warned: ${e.warnings.join("; ")}`);
        observer.observe({ type: "object", app: app.name, cluster: app.cluster, entry: e });
      },
    });
    const log = opts.log.child({ app: app.name, cluster: app.cluster });
    return new AppReconciler({
      app,
      repo: (repos.get(app.repo) as RepoConnection).repo,
      engine,
      hashKey: cluster.hashKey,
      objectGuard,
      client: cluster.client,
      discovery: cluster.discovery,
      store: cluster.store,
      control: cluster.control,
      log,
      guard: cluster.verify,
      kustomize: config.kustomize,
      verifyCommit: verifiers.has(app.repo) ? (sha) => (verifiers.get(app.repo) as CommitVerifier).check(sha) : undefined,
      dependency: async (name) => {
        const r = byName.get(name);
        if (r) return { state: await r.currentState(), head: r.lastTarget };
        // Not run by this process (plumber run --only): its state from its cluster.
        const dep = config.apps.find((a) => a.name === name);
        const conn = dep && clusters.get(dep.cluster);
        return { state: conn ? await conn.store.load(name) : undefined };
      },
      observer,
      clock: opts.clock,
      ...(app.promote ? { promotion: promotionOf(config, app.promote, clusters, opts.clock ?? systemClock) } : {}),
    });
  });
  for (const r of reconcilers) byName.set(r.app.name, r);
  const releases = opts.only
    ? []
    : await buildReleaseSchedulers(
        config,
        { repos, clusters, connectRepo: (c) => connectRepo(c, opts.cacheDir ?? defaultCacheDir()), connectCluster: (c) => connectCluster(c, config.state.namespace) },
        { log: opts.log, observer },
      );
  return {
    config,
    clusters,
    repos,
    apps: reconcilers,
    releases,
    notifier,
    observer,
    close() {
      void notifier.close();
      for (const r of repos.values()) {
        r.http.close();
        r.repo.close();
      }
      for (const c of clusters.values()) c.client.close();
    },
  };
}

/** The apps an app goes after in a round: its dependencies, and the app it is promoted from. */
function followsApps(app: AppConfig): string[] {
  return app.promote ? [...app.dependsOn, app.promote.from] : app.dependsOn;
}

/** A promoted app's source: the source app's record, read in its own cluster behind that cluster's guard. */
function promotionOf(config: PlumberConfig, promote: NonNullable<AppConfig["promote"]>, clusters: Map<string, ClusterConnection>, clock: Clock): ReturnType<typeof promotionSource> {
  const source = config.apps.find((a) => a.name === promote.from);
  const conn = source && clusters.get(source.cluster);
  if (!conn) throw new Error(`promote.from: no app named ${promote.from}`);
  return promotionSource({ source: promote.from, soakMs: promote.soakMs, guard: conn.verify, load: () => conn.store.loadStatus(promote.from), now: () => clock.now() });
}

function repoOf(config: PlumberConfig, app: AppConfig): RepoConfig {
  const r = config.repos.find((x) => x.name === app.repo);
  if (!r) throw new Error(`app ${app.name}: no repo named ${app.repo}`);
  return r;
}

function clusterOf(config: PlumberConfig, app: AppConfig): ClusterConfig {
  const c = config.clusters.find((x) => x.name === app.cluster);
  if (!c) throw new Error(`app ${app.name}: no cluster named ${app.cluster}`);
  return c;
}
