// Which replica owns which app: apps fall into a fixed number of shards (a hash of the name), and
// the shards go to the live members by rendezvous (highest-random-weight) hashing with bounded
// loads. Each member scores each shard by a hash of (member, shard); a shard goes to its
// highest-scoring member that still has room for its apps, room being ceil(LOAD × apps / members).
// Every member computes the same owners from the same apps, shard count and members, with no
// coordination. A member that leaves moves its own shards (each to its next choice) and few
// others; one that joins takes about 1/N, mostly the ones it scores highest on. The bound keeps a
// small fleet balanced (plain rendezvous hashing gives 12 apps over 3 members a 2% chance of a
// member with none). Shards, not apps, are what a Lease guards: Lease traffic grows with the
// shard count, never with the number of apps.
import { createHash } from "node:crypto";

/** No member gets more than LOAD × its fair share of apps (consistent hashing with bounded loads, c = 1.25). */
const LOAD = 1.25;

/** Shards when none is configured: Lease traffic of 32 renewals per retry period across all replicas, whatever the fleet. */
export const DEFAULT_SHARDS = 32;

function hash64(...parts: string[]): bigint {
  const h = createHash("sha256");
  parts.forEach((p, i) => (i > 0 ? h.update("\0").update(p) : h.update(p)));
  return h.digest().readBigUInt64BE(0);
}

/** The shard an app falls into (0 … shards-1). */
export function shardOf(app: string, shards: number): number {
  return Number(hash64(app) % BigInt(Math.max(1, shards)));
}

/**
 * Each item's owner among `members` (none when there are no members); `weight`: what an item
 * counts against a member's room (its apps, for a shard).
 */
export function assign(items: readonly string[], members: readonly string[], weight: (item: string) => number = () => 1): Map<string, string> {
  const out = new Map<string, string>();
  const ms = [...new Set(members)].sort();
  if (ms.length === 0) return out;
  const names = [...new Set(items)].sort();
  const total = names.reduce((n, x) => n + weight(x), 0);
  const room = Math.ceil((LOAD * total) / ms.length);
  const load = new Map(ms.map((m) => [m, 0]));
  for (const item of names) {
    const w = weight(item);
    // Ties (astronomically unlikely) go to the smaller identity, so every member agrees.
    const ranked = ms.map((m) => ({ m, s: hash64(m, item) })).sort((a, b) => (a.s === b.s ? (a.m < b.m ? -1 : 1) : a.s > b.s ? -1 : 1));
    // A shard heavier than what is left anywhere goes to its first choice among the least loaded.
    const fits = ranked.find((r) => (load.get(r.m) ?? 0) + w <= room);
    const least = Math.min(...ms.map((m) => load.get(m) ?? 0));
    const owner = (fits ?? (ranked.find((r) => load.get(r.m) === least) as { m: string })).m;
    load.set(owner, (load.get(owner) ?? 0) + w);
    out.set(item, owner);
  }
  return out;
}

/** Each app's owner: its shard's, the shards weighted by their apps. */
export function assignApps(apps: readonly string[], members: readonly string[], shards: number): Map<string, string> {
  const byShard = new Map<string, number>();
  for (const app of new Set(apps)) {
    const k = String(shardOf(app, shards));
    byShard.set(k, (byShard.get(k) ?? 0) + 1);
  }
  const owners = assign([...byShard.keys()], members, (k) => byShard.get(k) ?? 0);
  const out = new Map<string, string>();
  for (const app of new Set(apps)) {
    const o = owners.get(String(shardOf(app, shards)));
    if (o) out.set(app, o);
  }
  return out;
}
