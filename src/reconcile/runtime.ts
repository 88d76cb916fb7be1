import { join } from "node:path";
import { homedir } from "node:os";
import type { AppConfig, ClusterConfig, PlumberConfig, RepoConfig } from "../config/types.js";
import { readConfigFile, readSecretFile } from "../config/secrets.js";
import { Engine } from "../engine/engine.js";
import type { ChangeSetEntry } from "../engine/changeset.js";
import { SelfConfigGuardedEngine } from "../service/selfconfig.js";
import { createGitHttp, type GitHttpAuth, type GitHttpClient } from "../git/http.js";
import { GitRepo } from "../git/repo.js";
import { KubeClient, loadKubeConfig } from "../kube/client.js";
import { Discovery } from "../kube/discovery.js";
import type { Logger } from "../log.js";
import { StateStore } from "../state/store.js";
import type { ReleaseEvent, ReleaseScheduler } from "../releases/scheduler.js";
import { buildReleaseSchedulers } from "../releases/wiring.js";
import { buildNotifier, type Notifier } from "../notify/wiring.js";
import { ControlStore } from "../state/control.js";
import { HashKeyStore } from "../state/hashkey.js";
import { reservedObjectGuard } from "../state/guard.js";
import { verifyIdentity } from "../kube/identity.js";
import { AppReconciler, type AppEvent } from "./app.js";
import { dependencyOrder } from "../deps/graph.js";
import { logKustomizeIsolation } from "../kustomize/render.js";
import { CommitVerifier } from "../signing/verify.js";

/** A connection to one target cluster, shared by the apps deployed to it. */
export interface ClusterConnection {
  config: ClusterConfig;
  client: KubeClient;
  discovery: Discovery;
  store: StateStore;
  control: ControlStore;
  /** The wrong-cluster guard: resolves once the cluster proved its identity (cached), else throws. */
  verify: () => Promise<void>;
  /**
   * The installation's hash key in this cluster (after verify). `create`: make it when missing
   * (a writer); otherwise undefined until one exists (plan, status write nothing).
   */
  hashKey: (create: boolean) => Promise<Uint8Array | undefined>;
}

export interface RepoConnection {
  config: RepoConfig;
  repo: GitRepo;
  http: GitHttpClient;
  /** Git HTTP requests sent, for logs, status and the benchmark. */
  requests: { total: number; failed: number };
}

export interface Runtime {
  config: PlumberConfig;
  clusters: Map<string, ClusterConnection>;
  repos: Map<string, RepoConnection>;
  apps: AppReconciler[];
  /** Scheduled releases (src/releases); none when only some apps were asked for. */
  releases: ReleaseScheduler[];
  /** Notification sinks (flushed on close). */
  notifier: Notifier;
  close(): void;
}

export interface RuntimeOptions {
  log: Logger;
  /** Every object created, configured, pruned or failed, per app: for metrics. */
  onEntry?: (app: string, e: ChangeSetEntry) => void;
  cacheDir?: string;
  /** Only these apps (by name); all when omitted. */
  only?: string[];
  /** Releases fired, skipped, missed, finished: the hook for notifications. */
  onReleaseEvent?: (e: ReleaseEvent) => void;
  /** Deploys, failures, rollbacks, approvals: for notifications, events and metrics. */
  onAppEvent?: (e: AppEvent) => void;
  /** The leader-election Lease, which no app may deploy; without it a Lease named "plumber" is refused in every namespace. */
  lease?: { name: string; namespace?: string };
}

export function defaultCacheDir(): string {
  return process.env.PLUMBER_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "plumber", "repos");
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
  }
  await logKustomizeIsolation(config.kustomize, opts.log);
  const notifier = await buildNotifier(config.notifications, opts.log);
  const byName = new Map<string, AppReconciler>();
  const verifiers = new Map<string, CommitVerifier>();
  for (const [name, conn] of repos) if (conn.config.verify) verifiers.set(name, new CommitVerifier(conn.repo, conn.config.verify.keysFile, `repos[${name}].verify.keysFile`));
  // Whatever an app's namespace policy, plumber's own state is out of its reach.
  const objectGuard = reservedObjectGuard({ stateNamespace: config.state.namespace, lease: opts.lease });
  // Dependencies first, so a dependency's new revision is applied before its dependents look at it.
  const reconcilers = dependencyOrder(apps, (a) => a.name, (a) => a.dependsOn).map((app) => {
    const cluster = clusters.get(app.cluster) as ClusterConnection;
    // Engine, with plumber's own config validated before it is applied (src/service/selfconfig.ts).
    const engine = (hashKey: Uint8Array | undefined): Engine => new SelfConfigGuardedEngine({
      hashKey,
      client: cluster.client,
      discovery: cluster.discovery,
      concurrency: app.applyConcurrency,
      onEntry: (e) => {
        const fields = { app: app.name, cluster: app.cluster, object: e.subject, action: e.action };
        if (e.action === "failed") opts.log.warn({ ...fields, err: e.message }, `${e.subject} ${e.action}`);
        else opts.log.info(fields, `${e.subject} ${e.action}`);
        if (e.warnings?.length) opts.log.warn({ ...fields, warnings: e.warnings }, `${e.subject}: the apiserver warned: ${e.warnings.join("; ")}`);
        opts.onEntry?.(app.name, e);
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
      onEvent: (e) => {
        notifier.app(e, repoOf(config, app).url);
        opts.onAppEvent?.(e);
      },
    });
  });
  for (const r of reconcilers) byName.set(r.app.name, r);
  const releases = opts.only
    ? []
    : await buildReleaseSchedulers(
        config,
        { repos, clusters, connectRepo: (c) => connectRepo(c, opts.cacheDir ?? defaultCacheDir()), connectCluster: (c) => connectCluster(c, config.state.namespace) },
        {
          log: opts.log,
          onEvent: (e) => {
            const rel = config.releases.find((r) => r.name === e.release);
            if (rel) notifier.release(e, rel.cluster, config.repos.find((r) => r.name === rel.repo)?.url ?? "");
            opts.onReleaseEvent?.(e);
          },
        },
      );
  return {
    config,
    clusters,
    repos,
    apps: reconcilers,
    releases,
    notifier,
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

export async function connectRepo(config: RepoConfig, cacheDir: string): Promise<RepoConnection> {
  let auth: GitHttpAuth | undefined;
  if (config.auth?.tokenFile) auth = { token: await readSecretFile(config.auth.tokenFile, `repos[${config.name}].auth.tokenFile`) };
  else if (config.auth?.usernameFile && config.auth.passwordFile) {
    auth = {
      username: await readSecretFile(config.auth.usernameFile, `repos[${config.name}].auth.usernameFile`),
      password: await readSecretFile(config.auth.passwordFile, `repos[${config.name}].auth.passwordFile`),
    };
  }
  const caPem = config.caFile ? await readConfigFile(config.caFile, `repos[${config.name}].caFile`) : undefined;
  const requests = { total: 0, failed: 0 };
  const http = createGitHttp({
    auth,
    caPem,
    timeoutMs: config.timeoutMs,
    onRequest: (info) => {
      requests.total++;
      if (info.status === 0 || info.status >= 400) requests.failed++;
    },
  });
  const repo = new GitRepo({ url: config.url, http, cacheDir });
  return { config, repo, http, requests };
}

export async function connectCluster(config: ClusterConfig, stateNamespace: string): Promise<ClusterConnection> {
  let client: KubeClient;
  try {
    client = await KubeClient.create(loadKubeConfig(config));
  } catch (e) {
    throw new Error(`cluster ${config.name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let verified: Promise<void> | undefined;
  const verify = (): Promise<void> => {
    const expected = config.expect?.kubeSystemUID;
    if (!expected) return Promise.resolve();
    // A failed look (network) is retried next time; a mismatch keeps failing on its own.
    verified ??= verifyIdentity(client, config.name, expected).catch((e: unknown) => {
      verified = undefined;
      throw e;
    });
    return verified;
  };
  const keys = new HashKeyStore(client, stateNamespace);
  let key: Promise<Uint8Array | undefined> | undefined;
  const hashKey = async (create: boolean): Promise<Uint8Array | undefined> => {
    // Never read or create plumber's key in a cluster that is not the one the config names.
    await verify();
    const found = await (key ??= keys.load(create).catch((e: unknown) => {
      key = undefined;
      throw e;
    }));
    // Not there yet and not ours to create: ask again next time.
    if (!found) key = undefined;
    if (!found && create) return hashKey(true);
    return found;
  };
  return {
    config,
    client,
    discovery: new Discovery(client),
    store: new StateStore(client, stateNamespace),
    control: new ControlStore(client, stateNamespace),
    verify,
    hashKey,
  };
}
