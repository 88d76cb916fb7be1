// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and defaults
// (k8s.io/client-go/tools/leaderelection): one replica holds the Lease and renews it every
// retryPeriod; the others poll it and take it over once it has not changed for leaseDuration
// by their own clock (never the leader's clock: skew between hosts cannot cut a lease short).
// A leader that cannot renew within renewDeadline stops leading; `isLeader()` answers by the
// clock, so a write gate built on it closes on time even while a renew request hangs.
//
// One refinement over client-go, so that a standby takes over within leaseDuration of the
// leader's last renew (hence of its death) rather than up to two retry periods later: a standby
// dates a change of the Lease to the end of its previous look (when it still saw the old
// record) instead of to the look that saw the change, and looks again exactly when the Lease
// expires. That is at most 1.2 × retryPeriod (+ OBSERVE_SLACK_MS) early, so it stays safe as
// long as renewDeadline + 1.2 × retryPeriod + OBSERVE_SLACK_MS < leaseDuration, which
// checkTimings enforces: the old leader's gate is shut before anyone else can take over.
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import { ensureNamespace } from "../kube/namespace.js";
import type { Logger } from "../log.js";
import { sleep } from "../util/pool.js";

export interface LeaseTimings {
  /** How long a standby waits, after it last saw the Lease change, before taking it. client-go: 15s. */
  leaseDurationMs: number;
  /** How long the leader keeps leading without a successful renew. client-go: 10s. */
  renewDeadlineMs: number;
  /** How often the leader renews and standbys try to acquire. client-go: 2s. */
  retryPeriodMs: number;
}

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's JitterFactor: standbys poll every retryPeriod × [1, 1.2). */
const JITTER = 1.2;

/**
 * A change is dated to the previous look only if this look was quick (≤ LOOK_MAX_MS) and came
 * right after it (≤ 1.2 × retryPeriod + GAP_SLACK_MS: not after a pause, a stall or a frozen
 * process); otherwise to this look's end. OBSERVE_SLACK_MS is the sum of the two allowances.
 */
const LOOK_MAX_MS = 200;
const GAP_SLACK_MS = 50;
export const OBSERVE_SLACK_MS = LOOK_MAX_MS + GAP_SLACK_MS;

/** Refuses timings under which two replicas could lead at once. */
export function checkTimings(t: LeaseTimings): void {
  if (t.retryPeriodMs <= 0) throw new Error("leader election: retry period must be positive");
  if (t.leaseDurationMs < 1000) throw new Error("leader election: lease duration must be at least 1s");
  if (t.leaseDurationMs <= t.renewDeadlineMs) throw new Error("leader election: lease duration must be greater than the renew deadline");
  if (t.renewDeadlineMs <= JITTER * t.retryPeriodMs) throw new Error(`leader election: renew deadline must be greater than ${JITTER} × retry period`);
  if (t.renewDeadlineMs + JITTER * t.retryPeriodMs + OBSERVE_SLACK_MS >= t.leaseDurationMs) {
    throw new Error(`leader election: lease duration must be greater than renew deadline + ${JITTER} × retry period + ${OBSERVE_SLACK_MS}ms`);
  }
}

export interface LeaderElectorOptions extends LeaseTimings {
  /** A client of its own (no write gate): Lease traffic must go out while the runtime's is gated. */
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per process; default hostname_uuid, as client-go's callers do. */
  identity?: string;
  log: Logger;
  /** Injected for tests. */
  now?: () => number;
  random?: () => number;
  /** Told whenever this replica starts or stops leading. */
  onChange?: (leading: boolean) => void;
  /** Added to the Lease's labels when this replica creates it (shard members are listed by label). */
  labels?: Record<string, string>;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  spec: LeaseSpec;
}

export function defaultIdentity(): string {
  return `${process.env.POD_NAME || hostname()}_${randomUUID()}`;
}

/** RFC 3339 with microseconds: the MicroTime format the apiserver parses. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * When one Lease last changed, by this replica's clock: the dating rule above (a change is dated
 * to the end of the previous look when this look was quick and came right after it). Shared by
 * the elector (one GET per look) and the shard membership (one LIST per look for many Leases).
 */
export class LeaseSighting {
  lease?: Lease;
  /** Local time at which the Lease as last seen changed. */
  changedAt = 0;
  private key = "";
  /** Local time at the end of the previous look. */
  private lookedAt?: number;

  constructor(private readonly retryPeriodMs: number) {}

  /** A look that found `lease` (undefined: absent), begun at `start` and done at `end`. */
  saw(lease: Lease | undefined, start: number, end: number): void {
    const previous = this.lookedAt;
    const adjacent = previous !== undefined && end - start <= LOOK_MAX_MS && start - previous <= JITTER * this.retryPeriodMs + GAP_SLACK_MS;
    // The change (if any) happened after the previous look saw the old record.
    if (lease) this.note(lease, adjacent ? (previous as number) : end);
    this.lookedAt = end;
  }

  /** A failed look: the next change cannot be dated to the previous one. */
  missed(): void {
    this.lookedAt = undefined;
  }

  /** Our own write, sent at `at`, returned `lease` at `end`. */
  wrote(lease: Lease, at: number, end: number): void {
    this.note(lease, at);
    this.lookedAt = end;
  }

  get holder(): string | undefined {
    return this.lease?.spec?.holderIdentity || undefined;
  }

  /** When the Lease as last seen expires for this replica (its own clock); 0 when free or held by `self`. */
  expiresAt(self: string): number {
    const s = this.lease?.spec;
    if (!s?.holderIdentity || s.holderIdentity === self) return 0;
    return this.changedAt + (s.leaseDurationSeconds ?? 0) * 1000;
  }

  private note(lease: Lease, at: number): void {
    const s = lease.spec ?? {};
    const key = `${s.holderIdentity ?? ""}|${s.renewTime ?? ""}|${s.acquireTime ?? ""}|${s.leaseTransitions ?? 0}|${s.leaseDurationSeconds ?? 0}`;
    if (key !== this.key) {
      this.key = key;
      this.changedAt = at;
    }
    this.lease = lease;
  }
}

export class LeaderElector {
  readonly identity: string;
  private readonly opts: LeaderElectorOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private leading = false;
  /** Local time of the last successful acquire or renew. */
  private renewedAt = 0;
  /** The Lease as last seen, and when (local clock) it last changed. */
  private readonly sighting: LeaseSighting;

  constructor(opts: LeaderElectorOptions) {
    checkTimings(opts);
    this.opts = opts;
    this.identity = opts.identity ?? defaultIdentity();
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.sighting = new LeaseSighting(opts.retryPeriodMs);
  }

  get name(): string {
    return this.opts.name;
  }

  private get path(): string {
    return leasePath(this.opts.namespace, this.opts.name);
  }

  /** True while this replica holds the Lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.leading && this.now() - this.renewedAt < this.opts.renewDeadlineMs;
  }

  /**
   * True while the Lease as last seen is this replica's and was renewed within the renew
   * deadline: isLeader() without the leader term of run(), for Leases driven by step() (shards).
   */
  holds(): boolean {
    return this.sighting.holder === this.identity && this.now() - this.renewedAt < this.opts.renewDeadlineMs;
  }

  /** The holder as last observed (may be stale by up to a retry period). */
  observedHolder(): string | undefined {
    return this.sighting.holder;
  }

  private setLeading(v: boolean): void {
    if (this.leading === v) return;
    this.leading = v;
    this.opts.onChange?.(v);
  }

  /**
   * One attempt to acquire or renew (client-go's tryAcquireOrRenew). True when this replica holds
   * the Lease afterwards. Errors other than a lost race are logged and count as "not now".
   */
  async tryAcquireOrRenew(): Promise<boolean> {
    const start = this.now();
    let current: Lease | undefined;
    try {
      current = await this.opts.client.getOptional<Lease>(this.path);
    } catch (e) {
      this.sighting.missed();
      this.opts.log.warn({ err: errText(e), lease: this.where() }, "leader election: cannot read the lease");
      return false;
    }
    return this.step(current, start, this.now());
  }

  /** A look at the Lease read by the caller (one LIST for many Leases), without trying to take it. */
  see(current: Lease | undefined, start: number, end: number): void {
    if (current) this.sighting.saw(current, start, end);
    else this.sighting.missed();
  }

  /** The rest of tryAcquireOrRenew, on the Lease the caller read between `start` and `end` (undefined: absent). */
  async step(current: Lease | undefined, start: number, end: number): Promise<boolean> {
    const { client, log } = this.opts;
    const now = start;
    const durationS = Math.max(1, Math.ceil(this.opts.leaseDurationMs / 1000));
    if (!current) {
      const lease: Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.opts.name, namespace: this.opts.namespace, labels: { "app.kubernetes.io/managed-by": "plumber", ...this.opts.labels } },
        spec: { holderIdentity: this.identity, leaseDurationSeconds: durationS, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      };
      try {
        const created = await this.createLease(lease);
        this.sighting.wrote(created, now, this.now());
        this.renewedAt = now;
        return true;
      } catch (e) {
        if (!(e instanceof KubeApiError && e.conflict)) log.warn({ err: errText(e), lease: this.where() }, "leader election: cannot create the lease");
        return false;
      }
    }
    this.sighting.saw(current, start, end);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const heldByMe = holder === this.identity;
    const validFor = (spec.leaseDurationSeconds ?? durationS) * 1000;
    if (holder && !heldByMe && this.sighting.changedAt + validFor > this.now()) return false;
    // Ours to renew, released, or expired: take it, guarded by resourceVersion against a racing standby.
    const next: Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { ...current.metadata, name: this.opts.name, namespace: this.opts.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: durationS,
        acquireTime: heldByMe && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: heldByMe ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const updated = await client.request<Lease>({ method: "PUT", path: this.path, body: JSON.stringify(next) });
      this.sighting.wrote(updated.body, now, this.now());
      this.renewedAt = now;
      if (!heldByMe) log.info({ lease: this.where(), previous: holder || undefined }, "leader election: acquired the lease");
      return true;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.conflict)) log.warn({ err: errText(e), lease: this.where() }, "leader election: cannot update the lease");
      return false;
    }
  }

  /**
   * POSTs the Lease; on a fresh cluster its namespace (by default state.namespace) may not exist
   * yet, and nothing else creates it before someone leads, so create it then and try again. Only
   * on a 404: a replica whose namespace exists needs no permission on namespaces at all.
   */
  private async createLease(lease: Lease): Promise<Lease> {
    const { client } = this.opts;
    const post = async (): Promise<Lease> => (await client.request<Lease>({ method: "POST", path: this.path.replace(/\/[^/]+$/, ""), body: JSON.stringify(lease) })).body;
    try {
      return await post();
    } catch (e) {
      if (!(e instanceof KubeApiError && e.notFound)) throw e;
      this.opts.log.info({ namespace: this.opts.namespace }, "leader election: creating the lease's namespace");
      await ensureNamespace(client, this.opts.namespace);
      return post();
    }
  }

  /** When the Lease as last seen expires for this replica (its own clock); 0 when free or ours. */
  expiresAt(): number {
    return this.sighting.expiresAt(this.identity);
  }

  private where(): string {
    return `${this.opts.namespace}/${this.opts.name}`;
  }

  /**
   * Campaigns until `signal` aborts. Each time this replica becomes leader, `lead(term)` runs; the
   * term aborts when leadership is lost or on shutdown, and the Lease keeps being renewed until
   * `lead` has returned (so work in flight at shutdown finishes as leader). On shutdown the Lease
   * is released so a standby takes over at its next retry instead of after a lease duration.
   */
  async run(signal: AbortSignal, lead: (term: AbortSignal) => Promise<void>): Promise<void> {
    const { log } = this.opts;
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      this.setLeading(true);
      log.info({ identity: this.identity, lease: this.where() }, "leading");
      const term = new AbortController();
      const onShutdown = (): void => term.abort();
      signal.addEventListener("abort", onShutdown, { once: true });
      const workDone = new AbortController();
      const work = (async () => {
        try {
          await lead(term.signal);
        } catch (e) {
          log.error({ err: errText(e) }, "leader work failed");
        } finally {
          workDone.abort();
        }
      })();
      let lost = false;
      while (!workDone.signal.aborted) {
        await sleep(this.opts.retryPeriodMs, workDone.signal);
        if (workDone.signal.aborted) break;
        if (await this.tryAcquireOrRenew()) continue;
        const other = this.observedHolder();
        if ((other && other !== this.identity) || !this.isLeader()) {
          // Someone else holds it, or the renew deadline passed: stop at once (the gate is shut
          // by isLeader() already when the deadline passed).
          lost = true;
          this.setLeading(false);
          log.warn({ lease: this.where(), holder: other }, "leader election: lost the lease; stopping work");
          term.abort();
          break;
        }
      }
      await work;
      signal.removeEventListener("abort", onShutdown);
      if (!lost) {
        this.setLeading(false);
        await this.release();
      }
    }
  }

  /** Polls until this replica holds the Lease (true) or `signal` aborts (false). */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    let logged = false;
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew()) return true;
      if (!logged) {
        this.opts.log.info({ lease: this.where(), holder: this.observedHolder() }, "leader election: standing by");
        logged = true;
      }
      // Look again after a retry period, or right when the Lease expires if that is sooner.
      const retry = Math.round(this.opts.retryPeriodMs * (1 + (JITTER - 1) * this.random()));
      const expiry = this.expiresAt() - this.now() + 1;
      await sleep(Math.max(1, expiry > 0 ? Math.min(retry, expiry) : retry), signal);
    }
    return false;
  }

  /** Gives the Lease up (holder emptied) if this replica still holds it: as client-go's ReleaseOnCancel. */
  async release(): Promise<void> {
    this.setLeading(false);
    const lease = this.sighting.lease;
    if (!lease || lease.spec?.holderIdentity !== this.identity) return;
    const now = this.now();
    const released: Lease = {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) },
    };
    try {
      const res = await this.opts.client.request<Lease>({ method: "PUT", path: this.path, body: JSON.stringify(released) });
      this.sighting.wrote(res.body, now, this.now());
      this.opts.log.info({ lease: this.where() }, "leader election: released the lease");
    } catch (e) {
      // A conflict means someone else has it already; anything else: it expires on its own.
      if (!(e instanceof KubeApiError && e.conflict)) this.opts.log.warn({ err: errText(e), lease: this.where() }, "leader election: cannot release the lease");
    }
  }
}

export function leasePath(namespace: string, name?: string): string {
  const coll = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  return name === undefined ? coll : `${coll}/${encodeURIComponent(name)}`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
