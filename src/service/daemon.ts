// `plumber run`: config → metrics/probes server → (leader election →) runtime → repo pollers and
// extra loops, only while leading → reload on SIGHUP or file change → graceful shutdown.
//
// Writes are gated in KubeClient (writeGate): a replica writes only while it holds the Lease
// (checked against the clock on every request, so a leader that cannot renew stops writing at
// its renew deadline even if a renew request hangs), and after the shutdown grace period only
// the state record of what was written may still go out. Each leader term builds a fresh
// runtime, so a replica that takes over starts from the state persisted in the cluster.
//
// Sharded (--shard, src/service/shard.ts): every replica runs the pollers, each reconciling the
// apps it holds the Lease of, and the gate lets an app's writes out only under that app's Lease;
// the loops (release schedulers) still run on the leader only.
import { readFileSync } from "node:fs";
import type { PlumberConfig } from "../config/types.js";
import { connectCluster } from "../connect/cluster.js";
import { KubeClient, loadKubeConfig, type KubeRequest } from "../kube/client.js";
import type { Logger } from "../log.js";
import { fanOut } from "../observe/events.js";
import { repoPoller } from "../reconcile/poller.js";
import { buildRuntime, type Runtime, type RuntimeOptions } from "../reconcile/runtime.js";
import { stateObjectName } from "../state/store.js";
import { sleep } from "../util/pool.js";
import { EventRateLimiter, EventRecorder, EventsObserver } from "./events.js";
import { startServiceHttp, type ProbeResult, type ServiceHttp } from "./http.js";
import { DEFAULT_LEASE_TIMINGS, defaultIdentity, LeaderElector, type LeaseTimings } from "./leader.js";
import { Leadership } from "./leadership.js";
import { PlumberMetrics } from "./metrics.js";
import { currentWork, ShardCoordinator } from "./shard.js";
import { permissionHint } from "./permissions.js";
import { ConfigReloader, type ReloadResult } from "./reload.js";

/** Something that runs until its signal aborts: a repo poller, a release scheduler. */
export interface Loop {
  name: string;
  run(signal: AbortSignal): Promise<void>;
}

/** A loop, or a function making loops from the runtime of the current leader term. */
export type LoopSource = Loop | ((rt: Runtime) => Loop | Loop[] | undefined);

export interface LeaderElectionSettings extends LeaseTimings {
  enabled: boolean;
  /** Default: the pod's namespace in a cluster, else $POD_NAMESPACE, else state.namespace. */
  namespace?: string;
  name: string;
  identity?: string;
  /** Where the Lease lives. Default: $KUBECONFIG or in-cluster, else the config's first cluster. */
  kubeconfig?: string;
}

export interface DaemonOptions {
  configPath: string;
  /** The config as loaded at start. */
  config: PlumberConfig;
  log: Logger;
  cacheDir?: string;
  /** host:port of /metrics, /healthz, /readyz; empty: no server. */
  metricsAddr?: string;
  leaderElection?: Partial<LeaderElectionSettings>;
  /** Run beside the repo pollers while leading. */
  loops?: LoopSource[];
  /**
   * Split the apps among the replicas (src/service/shard.ts), with the lease settings of
   * leaderElection (its Lease still elects the replica that runs `loops`).
   */
  shard?: boolean;
  /** With shard: how many shards (Leases) the apps fall into (default shard-assign.ts DEFAULT_SHARDS); the same on every replica. */
  shards?: number;
  /** Options for each leader term's runtime; its observer hears what the daemon's metrics and Events do. */
  runtimeOptions?: Omit<RuntimeOptions, "log" | "cacheDir">;
  /** After SIGTERM: how long the cycle in flight may take before writes are abandoned. Default 20s. */
  shutdownGraceMs?: number;
  /** SIGTERM/SIGINT stop, SIGHUP reloads. Off for in-process use (tests), which pass `stop`. */
  handleSignals?: boolean;
  stop?: AbortSignal;
  /** Fallback poll of the config file; default 5s. */
  reloadPollMs?: number;
}

/** After the grace period: how long the abandoned cycle may take to record its state before the daemon stops anyway. */
const ABANDON_MS = 5_000;
const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export class Daemon {
  readonly metrics: PlumberMetrics;
  readonly identity: string;
  private config: PlumberConfig;
  private readonly log: Logger;
  private readonly stop = new AbortController();
  private readonly forced = new AbortController();
  private readonly limiter = new EventRateLimiter();
  private elector?: LeaderElector;
  private shard?: ShardCoordinator;
  private readonly leadership = new Leadership();
  private http?: ServiceHttp;
  private reloader?: ConfigReloader;
  private restartGeneration?: () => void;
  private draining = false;
  private closed = false;
  private ready = false;
  private notReady = "reading the state of every app";

  constructor(private readonly opts: DaemonOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.metrics = new PlumberMetrics();
    this.identity = opts.leaderElection?.identity ?? defaultIdentity();
    opts.stop?.addEventListener("abort", () => this.shutdown("stop"), { once: true });
  }

  /** The address of the metrics/probes server, once listening. */
  get address(): string | undefined {
    return this.http?.address;
  }

  readiness(): ProbeResult {
    return this.ready ? { ok: true } : { ok: false, reason: this.notReady };
  }

  /** SIGHUP: re-read and re-validate the config (and the secret files it names). */
  reload(): Promise<ReloadResult> {
    return this.reloader?.reload("signal") ?? Promise.resolve("unchanged");
  }

  /** Stops polling now; the cycle in flight gets the grace period, then its writes are abandoned. */
  shutdown(why: string): void {
    if (this.stop.signal.aborted) {
      // A second signal: abandon the writes in flight now.
      if (!this.draining) this.log.warn({ signal: why }, "second stop signal: abandoning the writes in flight");
      this.draining = true;
      return;
    }
    const grace = this.opts.shutdownGraceMs ?? 20_000;
    this.log.info({ signal: why, graceMs: grace }, "stopping: no new cycles; the one in flight may finish");
    this.stop.abort();
    const t1 = setTimeout(() => {
      if (!this.draining) this.log.warn({ graceMs: grace }, "grace period over: abandoning the objects not yet written (state records what was)");
      this.draining = true;
    }, grace);
    const t2 = setTimeout(() => {
      this.log.error("shutdown: the cycle in flight did not stop; exiting anyway (no further writes)");
      this.closed = true;
      this.forced.abort();
    }, grace + ABANDON_MS);
    t1.unref();
    t2.unref();
    this.forced.signal.addEventListener("abort", () => clearTimeout(t2), { once: true });
  }

  async run(): Promise<number> {
    const { log } = this;
    const onTerm = (): void => this.shutdown("SIGTERM");
    const onInt = (): void => this.shutdown("SIGINT");
    const onHup = (): void => void this.reload();
    if (this.opts.handleSignals) {
      process.on("SIGTERM", onTerm);
      process.on("SIGINT", onInt);
      process.on("SIGHUP", onHup);
    }
    try {
      // Fail fast on what no retry fixes (no cluster credentials, unreadable secret files): the
      // error is printed and the process exits 1 (kubelet restarts it), before serving anything.
      (await buildRuntime(this.config, { log, cacheDir: this.opts.cacheDir })).close();
      if (this.opts.metricsAddr) {
        this.http = await startServiceHttp({
          addr: this.opts.metricsAddr,
          metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.text() }),
          ready: () => this.readiness(),
        });
        log.info({ addr: this.http.address }, "serving /metrics, /healthz and /readyz");
      }
      this.reloader = new ConfigReloader({
        path: this.opts.configPath,
        current: this.config,
        log,
        pollMs: this.opts.reloadPollMs,
        apply: (c) => this.accept(c),
        onResult: (r) => this.metrics.observeReload(r),
      });
      await this.reloader.start();
      const synced = this.syncStateForReadiness();
      const le = this.leaderSettings();
      if (this.opts.shard) await this.runSharded(le);
      else if (le.enabled) {
        const client = await this.leaseClient(le);
        this.elector = new LeaderElector({
          ...le,
          namespace: le.namespace ?? this.defaultLeaseNamespace(),
          client,
          identity: this.identity,
          log,
          onChange: (leading) => this.metrics.setLeader(leading),
        });
        this.metrics.setLeader(false);
        log.info({ identity: this.identity, lease: `${le.namespace ?? this.defaultLeaseNamespace()}/${le.name}`, ...timings(le) }, "leader election on");
        try {
          await this.elector.run(this.stop.signal, (term) => this.lead(term));
        } finally {
          client.close();
        }
      } else {
        this.metrics.setLeader(true);
        await this.lead(this.stop.signal);
        this.metrics.setLeader(false);
      }
      await within(synced, 1000);
      log.info("stopped");
      return 0;
    } finally {
      this.closed = true;
      this.reloader?.stop();
      await this.http?.close();
      if (this.opts.handleSignals) {
        process.off("SIGTERM", onTerm);
        process.off("SIGINT", onInt);
        process.off("SIGHUP", onHup);
      }
    }
  }

  /** Every replica reconciles the apps it holds the Lease of; the leader also runs the loops. */
  private async runSharded(le: LeaderElectionSettings): Promise<void> {
    const namespace = le.namespace ?? this.defaultLeaseNamespace();
    const client = await this.leaseClient(le);
    const t = { leaseDurationMs: le.leaseDurationMs, renewDeadlineMs: le.renewDeadlineMs, retryPeriodMs: le.retryPeriodMs };
    this.shard = new ShardCoordinator({
      ...t,
      client,
      namespace,
      identity: this.identity,
      log: this.log,
      apps: () => this.config.apps.map((a) => a.name),
      ...(this.opts.shards !== undefined ? { shards: this.opts.shards } : {}),
      onRound: (v) => this.metrics.setShard(v.members.length, v.owned.length, v.assigned),
    });
    this.elector = new LeaderElector({ ...t, namespace, name: le.name, client, identity: this.identity, log: this.log, onChange: (leading) => this.metrics.setLeader(leading) });
    this.metrics.setLeader(false);
    this.log.info({ identity: this.identity, namespace, lease: le.name, ...timings(le) }, "sharding on: apps split among the replicas by Leases");
    try {
      await Promise.all([this.shard.run(this.stop.signal, () => this.lead(this.stop.signal)), this.elector.run(this.stop.signal, (term) => this.leadership.hold(term))]);
    } finally {
      client.close();
    }
  }

  private leaderSettings(): LeaderElectionSettings {
    const le = this.opts.leaderElection ?? {};
    return {
      enabled: le.enabled ?? false,
      name: le.name ?? "plumber",
      namespace: le.namespace,
      kubeconfig: le.kubeconfig,
      leaseDurationMs: le.leaseDurationMs ?? DEFAULT_LEASE_TIMINGS.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs ?? DEFAULT_LEASE_TIMINGS.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs ?? DEFAULT_LEASE_TIMINGS.retryPeriodMs,
    };
  }

  private defaultLeaseNamespace(): string {
    try {
      const ns = readFileSync(SA_NAMESPACE_FILE, "utf8").trim();
      if (ns) return ns;
    } catch {
      // not in a pod
    }
    return process.env.POD_NAMESPACE || this.config.state.namespace;
  }

  /** The Lease's own client: never gated (it must renew while the runtime's writes are shut). */
  private async leaseClient(le: LeaderElectionSettings): Promise<KubeClient> {
    let kc;
    if (le.kubeconfig) kc = loadKubeConfig({ kubeconfig: le.kubeconfig });
    else {
      try {
        kc = loadKubeConfig({});
      } catch {
        const first = this.config.clusters[0];
        if (!first) throw new Error("leader election: no cluster to keep the Lease in");
        kc = loadKubeConfig(first);
      }
    }
    // A renew must not hang past the renew deadline.
    return KubeClient.create(kc, { timeoutMs: Math.max(1000, Math.min(le.renewDeadlineMs / 2, 10_000)) });
  }

  /** A candidate config from a reload: it must build a runtime (secret files, kubeconfigs) before it replaces the running one. */
  private async accept(config: PlumberConfig): Promise<void> {
    const probe = await buildRuntime(config, { log: this.log, cacheDir: this.opts.cacheDir });
    probe.close();
    this.config = config;
    this.restartGeneration?.();
  }

  /**
   * Readiness: the first read of every app's state (GETs only, so standbys do it too). Retried
   * until it works; a missing permission is named in the log and in /readyz.
   */
  private async syncStateForReadiness(): Promise<void> {
    let delay = 1000;
    while (!this.stop.signal.aborted) {
      const config = this.config;
      const clients: KubeClient[] = [];
      try {
        for (const cluster of config.clusters) {
          const apps = config.apps.filter((a) => a.cluster === cluster.name);
          if (apps.length === 0) continue;
          const conn = await connectCluster(cluster, config.state.namespace);
          clients.push(conn.client);
          for (const app of apps) await conn.store.load(app.name);
        }
        this.ready = true;
        this.log.info({ apps: config.apps.length }, "ready: config loaded and the state of every app read");
        return;
      } catch (e) {
        this.notReady = `cannot read app state: ${permissionHint(e)}`;
        this.log.error({ err: this.notReady }, "not ready");
      } finally {
        for (const c of clients) c.close();
      }
      await sleep(delay, this.stop.signal);
      delay = Math.min(delay * 2, 30_000);
    }
  }

  /** While leading (or always, without leader election): one runtime per config generation. */
  private async lead(term: AbortSignal): Promise<void> {
    const { log } = this;
    while (!term.aborted) {
      const gen = new AbortController();
      const abortGen = (): void => gen.abort();
      term.addEventListener("abort", abortGen, { once: true });
      this.restartGeneration = abortGen;
      try {
        let rt: Runtime;
        // One observer per runtime: metrics (the daemon's, across terms), this runtime's Kubernetes
        // Events, and whatever the caller asked for; buildRuntime adds notifications.
        const events = new EventsObserver(log);
        try {
          const extra = this.opts.runtimeOptions;
          const observer = fanOut([this.metrics, events, ...(extra?.observer ? [extra.observer] : [])], (e) =>
            log.warn({ err: e instanceof Error ? e.message : String(e) }, "an observer failed; the others were told"),
          );
          rt = await buildRuntime(this.config, { ...extra, log, cacheDir: this.opts.cacheDir, observer });
        } catch (e) {
          log.error({ err: e instanceof Error ? e.message : String(e) }, "cannot build the runtime; retrying");
          await sleep(5000, gen.signal);
          continue;
        }
        const done = this.instrument(rt, events);
        const loops = this.loopsFor(rt);
        log.info({ apps: rt.apps.length, repos: rt.repos.size, clusters: rt.clusters.size, loops: loops.map((l) => l.name) }, "plumber running");
        try {
          const all = Promise.all(loops.map((l) => this.runLoop(l, gen.signal)));
          await Promise.race([all, new Promise<void>((r) => (this.forced.signal.aborted ? r() : this.forced.signal.addEventListener("abort", () => r(), { once: true })))]);
        } finally {
          await done();
          rt.close();
        }
        if (this.forced.signal.aborted) return;
      } finally {
        term.removeEventListener("abort", abortGen);
        this.restartGeneration = undefined;
      }
    }
  }

  private loopsFor(rt: Runtime): Loop[] {
    const shard = this.shard;
    const sharding = shard ? { owns: (app: string) => shard.canWrite(app), turn: <T>(app: string, work: () => Promise<T>) => shard.turn(app, work) } : {};
    const loops: Loop[] = [...rt.repos.keys()].map((name) => {
      const poller = repoPoller(rt, name, this.log, sharding);
      return { name: `repo/${name}`, run: (signal: AbortSignal) => poller.run(signal) };
    });
    for (const src of this.opts.loops ?? []) {
      const made = typeof src === "function" ? src(rt) : src;
      if (!made) continue;
      for (const loop of Array.isArray(made) ? made : [made]) loops.push(shard ? this.leadership.only(loop) : loop);
    }
    return loops;
  }

  /** A loop that throws is logged and restarted (after a pause) until the term ends. */
  private async runLoop(loop: Loop, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await loop.run(signal);
        return;
      } catch (e) {
        this.log.error({ loop: loop.name, err: e instanceof Error ? e.message : String(e) }, "loop failed; restarting it");
        await sleep(5000, signal);
      }
    }
  }

  /** Write gate, request metrics and Event recorders on a fresh runtime; returns the undo. */
  private instrument(rt: Runtime, events: EventsObserver): () => Promise<void> {
    const stateNs = rt.config.state.namespace;
    const undo: Array<() => void> = [];
    for (const [name, cluster] of rt.clusters) {
      cluster.client.writeGate = (req) => this.writeRefusal(req, stateNs);
      undo.push(this.metrics.trackKube(name, cluster.client.stats));
      events.attach(
        name,
        new EventRecorder({
          client: cluster.client,
          namespace: stateNs,
          identity: this.identity,
          limiter: this.limiter,
          log: this.log,
          onOutcome: (reason, outcome) => this.metrics.observeEvent(reason, outcome),
        }),
      );
    }
    for (const [name, repo] of rt.repos) undo.push(this.metrics.trackRepo(name, repo.requests));
    return async () => {
      for (const u of undo) u();
      await within(events.flush(), 2000);
    };
  }

  private writeRefusal(req: KubeRequest, stateNs: string): string | undefined {
    if (this.closed) return "plumber has stopped";
    if (this.shard) {
      const refused = this.shardRefusal(this.shard, req, stateNs);
      if (refused) return refused;
    } else if (this.elector && !this.elector.isLeader()) return "this replica is not the leader";
    if (this.draining && !isStateWrite(req, stateNs)) return "plumber is shutting down (grace period over)";
    return undefined;
  }

  /** An app's writes (its turn, or its state record written outside it) need the app's Lease; the loops' need the leader's. */
  private shardRefusal(shard: ShardCoordinator, req: KubeRequest, stateNs: string): string | undefined {
    const work = currentWork();
    const app = work?.app ?? appOfStateWrite(req, stateNs);
    if (app !== undefined) return shard.canWrite(app) ? undefined : `this replica does not hold the lease of app ${app}`;
    if (work?.leader) return this.elector?.isLeader() ? undefined : "this replica is not the leader";
    return shard.alive() ? undefined : "this replica's shard membership lapsed";
  }
}

/** The app whose state record (or one of its chunks) `req` writes, if it does. */
function appOfStateWrite(req: KubeRequest, stateNs: string): string | undefined {
  const prefix = `/api/v1/namespaces/${encodeURIComponent(stateNs)}/configmaps/${stateObjectName("")}`;
  if (!req.path.startsWith(prefix)) return undefined;
  // plumber-app-<app> or a chunk plumber-app-<app>.<generation>.<n>; app names have no dots.
  const rest = req.path.slice(prefix.length).split(".")[0] ?? "";
  return rest && !rest.includes("/") ? decodeURIComponent(rest) : undefined;
}

/** Waits for `p`, at most `ms` (without a timer that keeps the process alive afterwards). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (t = setTimeout(r, ms)))]);
  clearTimeout(t);
}

function isStateWrite(req: KubeRequest, stateNs: string): boolean {
  // DELETE: a state save ends by removing the chunks of the inventory generation it replaced.
  return (req.method === "PATCH" || req.method === "DELETE") && req.path.startsWith(`/api/v1/namespaces/${encodeURIComponent(stateNs)}/configmaps/${stateObjectName("")}`);
}

function timings(t: LeaseTimings): Record<string, string> {
  return { leaseDuration: `${t.leaseDurationMs}ms`, renewDeadline: `${t.renewDeadlineMs}ms`, retryPeriod: `${t.retryPeriodMs}ms` };
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  return new Daemon(opts).run();
}
