// Sharding over replicas (`plumber run --shard`), with coordination.k8s.io/v1 Leases as the only
// coordination:
//   - membership: each replica holds a Lease of its own (plumber-member-<hash of identity>,
//     labelled plumber.dev/shard=member) and renews it every retry period; every replica LISTs
//     them and counts a member dead once its Lease has not changed for its lease duration by the
//     observer's own clock (leader.ts's LeaseSighting, the same dating rule as leader election);
//   - assignment: apps fall into a fixed number of shards (a hash of the app's name), and the
//     shards go to the live members by rendezvous hashing with bounded loads (shard-assign.ts),
//     computed by each replica alone;
//   - writing: an app is written only under its shard's Lease (plumber-shard-<n>, labelled
//     plumber.dev/shard=shard), taken and renewed with resourceVersion preconditions by the same
//     code as the leader Lease (LeaderElector.step), and checked by the write gate before every
//     write (canWrite: held and renewed within the renew deadline, as isLeader() for the leader).
//     One Lease per shard, not per app, so Lease traffic stays flat however many apps there are.
// Assignment only says who should try; the shard's Lease is what makes two writers impossible, so
// replicas that briefly disagree on the members (one has not seen a join yet) only wait. A replica
// that loses a shard by rebalancing shuts its gate at once, keeps renewing its Lease until the
// turns in flight of its apps are over, then releases it, so the new owner takes it at its next
// round. A replica that dies stops renewing: its shards' Leases expire for the others after one
// lease duration, and each goes to its owner among the survivors, which looks again right at expiry.
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import type { Logger } from "../log.js";
import { mapLimit, sleep } from "../util/pool.js";
import { LeaderElector, LeaseSighting, leasePath, type Lease, type LeaseTimings } from "./leader.js";
import { assignApps, DEFAULT_SHARDS, shardOf } from "./shard-assign.js";

export const SHARD_LABEL = "plumber.dev/shard";
const SHARD_INDEX_LABEL = "plumber.dev/shard-index";
/** client-go's jitter factor, as leader.ts. */
const JITTER = 1.2;
/** Lease writes in flight at once in one round (renewals of many apps). */
const ROUND_CONCURRENCY = 8;
/** A member Lease dead for this many lease durations is deleted (identities are per process). */
const GC_AFTER_DURATIONS = 4;

export function memberLeaseName(identity: string): string {
  return `plumber-member-${createHash("sha256").update(identity).digest("hex").slice(0, 16)}`;
}

export function shardLeaseName(shard: number | string): string {
  return `plumber-shard-${shard}`;
}

/**
 * The Lease an app is written under, with `shards` shards.
 * @internal for the tests and the bench, which tell from the apiserver's Leases who may write an app.
 */
export function appLeaseName(app: string, shards: number = DEFAULT_SHARDS): string {
  return shardLeaseName(shardOf(app, shards));
}

/** Who does the work running now: an app's turn, or a loop that runs only on the leader (releases). */
interface WorkContext {
  app?: string;
  leader?: boolean;
}

const context = new AsyncLocalStorage<WorkContext>();

/** Runs `fn` as work of the leader (release schedulers): its writes need the leader Lease. */
export function asLeaderWork<T>(fn: () => Promise<T>): Promise<T> {
  return context.run({ leader: true }, fn);
}

/** The context of the work making a request now. */
export function currentWork(): WorkContext | undefined {
  return context.getStore();
}

export interface ShardView {
  identity: string;
  members: string[];
  /** Apps this replica may write now. */
  owned: string[];
  /** How many apps the assignment gives this replica (more than owned while a handover is pending). */
  assigned: number;
}

export interface ShardOptions extends LeaseTimings {
  /** The Lease client (never gated). */
  client: KubeClient;
  namespace: string;
  identity: string;
  log: Logger;
  /** The apps of the running config. */
  apps: () => readonly string[];
  /** How many shards (Leases) the apps fall into; every replica must use the same. Default DEFAULT_SHARDS. */
  shards?: number;
  now?: () => number;
  random?: () => number;
  /** Told after every round. */
  onRound?: (view: ShardView) => void;
}

interface ShardSlot {
  lease: LeaderElector;
  /** Lost by rebalancing: gate shut, Lease kept until the turns in flight are over. */
  leaving: boolean;
  busy: number;
}

export class ShardCoordinator {
  readonly identity: string;
  private readonly opts: ShardOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly member: LeaderElector;
  private readonly members = new Map<string, LeaseSighting>();
  /** By shard index. */
  private readonly slots = new Map<string, ShardSlot>();
  private readonly shards: number;
  private live: string[] = [];
  private owners = new Map<string, string>();
  private ownedKey = "";
  private stopping = false;

  constructor(opts: ShardOptions) {
    this.opts = opts;
    this.identity = opts.identity;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.shards = Math.max(1, Math.floor(opts.shards ?? DEFAULT_SHARDS));
    this.member = new LeaderElector({ ...this.leaseOpts(memberLeaseName(opts.identity)), labels: { [SHARD_LABEL]: "member" } });
  }

  private leaseOpts(name: string): ConstructorParameters<typeof LeaderElector>[0] {
    const { client, namespace, log, leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.opts;
    return { client, namespace, name, identity: this.identity, log, now: this.now, random: this.random, leaseDurationMs, renewDeadlineMs, retryPeriodMs };
  }

  private shardKey(app: string): string {
    return String(shardOf(app, this.shards));
  }

  /** The write gate's question: this replica holds the Lease of `app`'s shard, renewed within the renew deadline, and has not lost it to a rebalance. */
  canWrite(app: string): boolean {
    const slot = this.slots.get(this.shardKey(app));
    return !!slot && !slot.leaving && slot.lease.holds();
  }

  /** This replica's membership is current (writes that belong to no app, e.g. Events). */
  alive(): boolean {
    return this.member.holds();
  }

  view(): ShardView {
    const owned = [...new Set(this.opts.apps())].filter((a) => this.canWrite(a)).sort();
    const assigned = [...this.owners.values()].filter((o) => o === this.identity).length;
    return { identity: this.identity, members: [...this.live], owned, assigned };
  }

  /** The owner of `app` by the last round's assignment. */
  assignedOwner(app: string): string | undefined {
    return this.owners.get(app);
  }

  /** One app's turn, in its write context; counted, so a lost app's Lease is kept until the turn is over. */
  async turn<T>(app: string, work: () => Promise<T>): Promise<T> {
    const slot = this.slots.get(this.shardKey(app));
    if (slot) slot.busy++;
    try {
      return await context.run({ app }, work);
    } finally {
      if (slot) slot.busy--;
    }
  }

  /** One look at every member and app Lease, then every Lease write this replica needs. */
  async round(): Promise<void> {
    const { log } = this.opts;
    const members = await this.list("member");
    const shardLeases = await this.list("shard");
    // Our own membership first: without it this replica owns nothing.
    if (members) await this.member.step(members.items.get(this.member.name), members.start, members.end);
    if (members) this.seeMembers(members);
    const alive = this.member.holds();
    const live = this.liveMembers(alive);
    const config = this.opts.apps();
    this.owners = assignApps(config, live, this.shards);
    this.live = live;
    const shardOwner = new Map<string, string>();
    for (const [app, owner] of this.owners) shardOwner.set(this.shardKey(app), owner);
    const wanted = new Set(config.map((a) => this.shardKey(a)));
    const names = new Set([...wanted, ...this.slots.keys()]);
    await mapLimit([...names], ROUND_CONCURRENCY, async (k) => {
      const mine = alive && shardOwner.get(k) === this.identity;
      let slot = this.slots.get(k);
      if (!slot && !mine && !shardLeases) return;
      slot ??= this.slot(k);
      const current = shardLeases?.items.get(slot.lease.name);
      // Stopping: keep what the work in flight holds, take nothing new.
      if (mine && !(this.stopping && !slot.lease.holds())) {
        slot.leaving = false;
        if (shardLeases) await slot.lease.step(current, shardLeases.start, shardLeases.end);
        return;
      }
      if (slot.lease.holds() || slot.busy > 0) {
        // Lost it (rebalanced, no app left in it, or stopping): shut the gate now, hand the Lease over once idle.
        slot.leaving = true;
        if (slot.busy > 0) {
          if (shardLeases) await slot.lease.step(current, shardLeases.start, shardLeases.end);
          return;
        }
        await slot.lease.release();
        return;
      }
      if (shardLeases) slot.lease.see(current, shardLeases.start, shardLeases.end);
      if (!wanted.has(k)) this.slots.delete(k);
    });
    const view = this.view();
    const key = view.owned.join(",");
    if (key !== this.ownedKey) {
      this.ownedKey = key;
      log.info({ identity: this.identity, members: view.members.length, owned: view.owned.length, apps: view.owned }, "shard: owned apps changed");
    }
    this.opts.onRound?.(view);
    if (members) await this.collectDead(members);
  }

  private slot(k: string): ShardSlot {
    const slot: ShardSlot = { lease: new LeaderElector({ ...this.leaseOpts(shardLeaseName(k)), labels: { [SHARD_LABEL]: "shard", [SHARD_INDEX_LABEL]: k } }), leaving: false, busy: 0 };
    this.slots.set(k, slot);
    return slot;
  }

  private seeMembers(listed: Listed): void {
    for (const [name, lease] of listed.items) {
      if (name === this.member.name) continue;
      let s = this.members.get(name);
      if (!s) this.members.set(name, (s = new LeaseSighting(this.opts.retryPeriodMs)));
      s.saw(lease, listed.start, listed.end);
    }
    for (const name of [...this.members.keys()]) if (!listed.items.has(name)) this.members.delete(name);
  }

  private liveMembers(self: boolean): string[] {
    const now = this.now();
    const out = self ? [this.identity] : [];
    for (const s of this.members.values()) {
      const holder = s.holder;
      if (holder && holder !== this.identity && s.expiresAt(this.identity) > now) out.push(holder);
    }
    return out.sort();
  }

  /** Deletes member Leases long dead (kill -9 leaves one per process), guarded by their resourceVersion. */
  private async collectDead(listed: Listed): Promise<void> {
    const now = this.now();
    for (const [name, s] of this.members) {
      const lease = listed.items.get(name);
      const rv = lease?.metadata.resourceVersion;
      if (!rv || now - s.changedAt < GC_AFTER_DURATIONS * this.opts.leaseDurationMs) continue;
      try {
        await this.opts.client.request({
          method: "DELETE",
          path: leasePath(this.opts.namespace, name),
          body: JSON.stringify({ apiVersion: "v1", kind: "DeleteOptions", preconditions: { resourceVersion: rv } }),
        });
        this.members.delete(name);
      } catch (e) {
        if (!(e instanceof KubeApiError && (e.conflict || e.notFound))) this.opts.log.warn({ lease: name, err: errText(e) }, "shard: cannot delete a dead member's lease");
      }
    }
  }

  private async list(kind: "member" | "shard"): Promise<Listed | undefined> {
    const start = this.now();
    try {
      const res = await this.opts.client.request<{ items?: Lease[] }>({
        method: "GET",
        path: leasePath(this.opts.namespace),
        query: { labelSelector: `${SHARD_LABEL}=${kind}` },
        list: true,
      });
      const items = new Map<string, Lease>();
      for (const l of res.body.items ?? []) items.set(l.metadata.name, l);
      return { items, start, end: this.now() };
    } catch (e) {
      // A failed look: nothing is dated to it (see()/step() are skipped), gates close by the clock.
      for (const s of this.members.values()) s.missed();
      // No namespace yet: no Leases; the first create makes the namespace (LeaderElector.createLease).
      if (e instanceof KubeApiError && e.notFound) return { items: new Map(), start, end: this.now() };
      this.opts.log.warn({ err: errText(e), kind }, "shard: cannot list the leases");
      return undefined;
    }
  }

  /** The earliest moment a Lease seen held by another replica expires, if any. */
  private nextExpiry(): number | undefined {
    let next: number | undefined;
    const now = this.now();
    // Only expiries to come: a Lease a dead replica left behind and nobody takes is not a reason to spin.
    const consider = (t: number): void => {
      if (t > now && (next === undefined || t < next)) next = t;
    };
    for (const s of this.members.values()) consider(s.expiresAt(this.identity));
    for (const slot of this.slots.values()) consider(slot.lease.expiresAt());
    return next;
  }

  /**
   * Rounds every retry period (and right when a Lease seen held by another replica expires, so
   * takeover is not a retry period late) until `work` is done; `signal` ends the rounds' wish for
   * new apps, not the renewals the work in flight needs. Then every Lease is released.
   */
  async run(signal: AbortSignal, work: () => Promise<void>): Promise<void> {
    const done = new AbortController();
    const worker = (async () => {
      try {
        await work();
      } finally {
        done.abort();
      }
    })();
    const onStop = (): void => {
      this.stopping = true;
    };
    signal.addEventListener("abort", onStop, { once: true });
    try {
      while (!done.signal.aborted) {
        const started = this.now();
        try {
          await this.round();
        } catch (e) {
          this.opts.log.error({ err: errText(e) }, "shard: round failed");
        }
        const retry = Math.round(this.opts.retryPeriodMs * (1 + (JITTER - 1) * this.random()));
        let wait = started + retry - this.now();
        const expiry = this.nextExpiry();
        if (expiry !== undefined && expiry + 1 - this.now() < wait) wait = expiry + 1 - this.now();
        await sleep(Math.max(1, wait), done.signal);
      }
    } finally {
      signal.removeEventListener("abort", onStop);
      await worker;
      this.stopping = true;
      for (const slot of this.slots.values()) {
        slot.leaving = true;
        await slot.lease.release();
      }
      await this.member.release();
    }
  }
}

interface Listed {
  items: Map<string, Lease>;
  start: number;
  end: number;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
