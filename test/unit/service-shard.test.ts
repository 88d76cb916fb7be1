// Sharding: the assignment (rendezvous hashing with bounded loads) and the coordinator's
// membership and per-app Leases against an in-memory Lease store with the apiserver's optimistic
// concurrency, on an injected clock.
import { describe, expect, it } from "vitest";
import { KubeApiError, type KubeClient, type KubeRequest } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { assign, assignApps, DEFAULT_SHARDS, shardOf } from "../../src/service/shard-assign.js";
import { appLeaseName, ShardCoordinator } from "../../src/service/shard.js";

const apps = (n: number): string[] => Array.from({ length: n }, (_, i) => `app-${i}`);
const ids = (n: number, prefix = "replica"): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}_f00d${i}`);

function counts(owners: Map<string, string>, members: string[]): number[] {
  return members.map((m) => [...owners.values()].filter((o) => o === m).length);
}

function moved(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...a.keys()].filter((k) => a.get(k) !== b.get(k));
}

describe("shard assignment", () => {
  it("gives every app one owner, the same whatever order the members are listed in", () => {
    const members = ids(3);
    const a = assign(apps(50), members);
    expect(a.size).toBe(50);
    expect(assign(apps(50), [...members].reverse())).toEqual(a);
    for (const owner of a.values()) expect(members).toContain(owner);
  });

  it("balances 50 apps over 3 members within the load bound, for many member sets", () => {
    for (let k = 0; k < 20; k++) {
      const members = ids(3, `set${k}`);
      const c = counts(assign(apps(50), members), members);
      expect(c.reduce((x, y) => x + y, 0)).toBe(50);
      // room = ceil(1.25 × 50 / 3) = 21, so nobody has fewer than 50 − 2 × 21.
      expect(Math.max(...c)).toBeLessThanOrEqual(21);
      expect(Math.min(...c)).toBeGreaterThanOrEqual(8);
    }
  });

  it("moves few apps when a member leaves or joins", () => {
    for (let k = 0; k < 10; k++) {
      const members = ids(4, `m${k}`);
      const before = assign(apps(50), members);
      const gone = members[3] as string;
      const after = assign(apps(50), members.slice(0, 3));
      const lost = [...before].filter(([, o]) => o === gone).map(([a]) => a);
      const movedApps = moved(before, after);
      // Every app of the one that left moves; of the others' apps, only a few (the load bound grew).
      for (const a of lost) expect(movedApps).toContain(a);
      expect(movedApps.length - lost.length).toBeLessThanOrEqual(5);
      // Joining again: the newcomer takes about a quarter, and few apps move between the others.
      const back = assign(apps(50), members);
      const joinMoves = moved(after, back);
      expect(joinMoves.filter((a) => back.get(a) !== gone).length).toBeLessThanOrEqual(5);
    }
  });
});

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

/** Leases as the apiserver keeps them (create, update with resourceVersion, list by label, delete). */
class FakeLeases {
  readonly leases = new Map<string, Lease>();
  rv = 0;
  /** Lease writes (create, update, delete) seen. */
  writes = 0;
  client(down: { v: boolean } = { v: false }): KubeClient {
    const name = (path: string): string => decodeURIComponent(path.split("/leases/")[1] ?? "");
    const c = {
      getOptional: async <T>(path: string): Promise<T | undefined> => {
        if (down.v) throw new KubeApiError(0, "ConnectionFailed", "down", "GET");
        const l = this.leases.get(name(path));
        return l ? (structuredClone(l) as T) : undefined;
      },
      request: async <T>(req: KubeRequest): Promise<{ status: number; body: T }> => {
        if (down.v) throw new KubeApiError(0, "ConnectionFailed", "down", req.method);
        if (req.method === "GET") {
          const [k, v] = (req.query?.labelSelector ?? "").split("=");
          const items = [...this.leases.values()].filter((l) => l.metadata.labels?.[k as string] === v);
          return { status: 200, body: structuredClone({ items }) as T };
        }
        this.writes++;
        if (req.method === "DELETE") {
          this.leases.delete(name(req.path));
          return { status: 200, body: {} as T };
        }
        const body = JSON.parse(req.body ?? "{}") as Lease;
        const existing = this.leases.get(body.metadata.name);
        if (req.method === "POST" && existing) throw new KubeApiError(409, "AlreadyExists", "exists", "POST");
        if (req.method === "PUT" && (!existing || body.metadata.resourceVersion !== existing.metadata.resourceVersion)) throw new KubeApiError(409, "Conflict", "conflict", "PUT");
        const stored = { ...body, metadata: { ...body.metadata, labels: body.metadata.labels ?? existing?.metadata.labels, resourceVersion: String(++this.rv) } };
        this.leases.set(body.metadata.name, stored);
        return { status: 200, body: structuredClone(stored) as T };
      },
    };
    return c as unknown as KubeClient;
  }
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function replica(server: FakeLeases, identity: string, clock: { t: number }, names: string[], down?: { v: boolean }): ShardCoordinator {
  return new ShardCoordinator({ ...timings, client: server.client(down), namespace: "plumber", identity, log: silentLogger(), apps: () => names, now: () => clock.t, random: () => 0 });
}

/** Rounds of every replica named, one retry period apart on the fake clock; after each, at most one writer per app. */
async function rounds(n: number, clock: { t: number }, rs: ShardCoordinator[], all: ShardCoordinator[], names: string[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    for (const r of rs) await r.round();
    for (const app of names) expect(all.filter((r) => r.canWrite(app)).length, `writers of ${app}`).toBeLessThanOrEqual(1);
    clock.t += timings.retryPeriodMs;
  }
}

describe("shard coordinator", () => {
  const names = apps(12);

  it("splits the apps among the live members, each app written by exactly one", async () => {
    const s = new FakeLeases();
    const clock = { t: 1_000_000 };
    const rs = ["a", "b", "c"].map((id) => replica(s, id, clock, names));
    await rounds(3, clock, rs, rs, names);
    for (const app of names) expect(rs.filter((r) => r.canWrite(app)).length).toBe(1);
    for (const r of rs) expect(r.view().members).toEqual(["a", "b", "c"]);
    expect(rs.map((r) => r.view().owned.length).reduce((x, y) => x + y, 0)).toBe(12);
    for (const r of rs) expect(r.view().owned.length).toBeGreaterThanOrEqual(2);
  });

  it("takes a dead member's apps once its Leases expire by the observer's clock, not before", async () => {
    const s = new FakeLeases();
    const clock = { t: 1_000_000 };
    const rs = ["a", "b", "c"].map((id) => replica(s, id, clock, names));
    await rounds(3, clock, rs, rs, names);
    const [a, b, c] = rs as [ShardCoordinator, ShardCoordinator, ShardCoordinator];
    const orphans = c.view().owned;
    expect(orphans.length).toBeGreaterThan(0);
    const diedAt = clock.t;
    // c stops (kill -9): the others go on; until its Leases expire nobody may write its apps.
    while (clock.t < diedAt + timings.leaseDurationMs - timings.retryPeriodMs) {
      await rounds(1, clock, [a, b], rs, names);
      for (const app of orphans) expect(a.canWrite(app) || b.canWrite(app)).toBe(false);
    }
    // Its own gate shut at its renew deadline, well before.
    for (const app of orphans) expect(c.canWrite(app)).toBe(false);
    await rounds(3, clock, [a, b], rs, names);
    for (const app of names) expect([a, b].filter((r) => r.canWrite(app)).length, app).toBe(1);
    expect(a.view().members).toEqual(["a", "b"]);
  });

  it("hands apps to a joining member only after their old owner let go", async () => {
    const s = new FakeLeases();
    const clock = { t: 1_000_000 };
    const rs = ["a", "b"].map((id) => replica(s, id, clock, names));
    await rounds(2, clock, rs, rs, names);
    const d = replica(s, "d", clock, names);
    const all = [...rs, d];
    // An app moving to d, in the middle of a turn at its old owner: not handed over until the turn ends.
    const busyApp = names.find((n) => assignApps(names, ["a", "b", "d"], DEFAULT_SHARDS).get(n) === "d") as string;
    const holder = rs.find((r) => r.canWrite(busyApp)) as ShardCoordinator;
    let release!: () => void;
    const turn = holder.turn(busyApp, () => new Promise<void>((r) => (release = r)));
    await rounds(4, clock, all, all, names);
    expect(d.view().owned.length).toBeGreaterThan(0);
    expect(d.canWrite(busyApp)).toBe(false);
    // The old owner's gate is shut, but it still holds the Lease.
    expect(holder.canWrite(busyApp)).toBe(false);
    expect(s.leases.get(appLeaseName(busyApp))?.spec.holderIdentity).toBe(holder.identity);
    release();
    await turn;
    await rounds(3, clock, all, all, names);
    expect(d.canWrite(busyApp)).toBe(true);
    for (const app of names) expect(all.filter((r) => r.canWrite(app)).length, app).toBe(1);
    expect(d.view().members).toEqual(["a", "b", "d"]);
  });

  it("renews one Lease per shard, not per app: Lease writes per round stay flat from 12 to 1,200 apps", async () => {
    const perRound = async (n: number): Promise<number> => {
      const s = new FakeLeases();
      const clock = { t: 1_000_000 };
      const many = apps(n);
      const rs = ["a", "b", "c"].map((id) => replica(s, id, clock, many));
      await rounds(3, clock, rs, rs, many);
      const before = s.writes;
      await rounds(5, clock, rs, rs, many);
      for (const app of many) expect(rs.filter((r) => r.canWrite(app)).length).toBe(1);
      return (s.writes - before) / 5;
    };
    const few = await perRound(12);
    const lots = await perRound(1200);
    // 3 member renewals + one renewal per shard in use (12 apps fill at most 12 of the 32).
    expect(few).toBeLessThanOrEqual(3 + 12);
    expect(lots).toBe(3 + DEFAULT_SHARDS);
  });

  it("puts every app of a shard on the shard's owner, the shards weighted by their apps", () => {
    const many = apps(300);
    const members = ids(3);
    const owners = assignApps(many, members, 16);
    for (const a of many) for (const b of many) if (shardOf(a, 16) === shardOf(b, 16)) expect(owners.get(a)).toBe(owners.get(b));
    // room = ceil(1.25 × 300 / 3) = 125 apps.
    for (const c of counts(owners, members)) expect(c).toBeLessThanOrEqual(125);
  });

  it("a replica cut off from the apiserver stops writing at its renew deadline", async () => {
    const s = new FakeLeases();
    const clock = { t: 1_000_000 };
    const down = { v: false };
    const a = replica(s, "a", clock, names, down);
    await rounds(2, clock, [a], [a], names);
    expect(a.view().owned.length).toBe(12);
    down.v = true;
    clock.t += timings.renewDeadlineMs;
    await a.round();
    expect(a.view().owned).toEqual([]);
    expect(a.alive()).toBe(false);
  });
});
