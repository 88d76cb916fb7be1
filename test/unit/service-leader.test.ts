// Lease-based leader election against an in-memory Lease with the apiserver's optimistic
// concurrency (resourceVersion), and an injected clock.
import { describe, expect, it, vi } from "vitest";
import { KubeApiError, type KubeClient, type KubeRequest } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { checkTimings, LeaderElector, microTime } from "../../src/service/leader.js";

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** One Lease, as the apiserver keeps it; `down` makes every request fail like a partition. */
class FakeLeaseServer {
  lease?: Lease;
  rv = 0;
  writes = 0;
  client(): KubeClient & { down: boolean } {
    return fakeClient(this);
  }
}

function fakeClient(server: FakeLeaseServer): KubeClient & { down: boolean } {
  const c = {
    down: false,
    async getOptional<T>(_path: string): Promise<T | undefined> {
      if (c.down) throw new KubeApiError(0, "ConnectionFailed", "down", "GET");
      return server.lease ? (structuredClone(server.lease) as T) : undefined;
    },
    async request<T>(req: KubeRequest): Promise<{ status: number; body: T }> {
      if (c.down) throw new KubeApiError(0, "ConnectionFailed", "down", req.method);
      const body = JSON.parse(req.body ?? "{}") as Lease;
      if (req.method === "POST") {
        if (server.lease) throw new KubeApiError(409, "AlreadyExists", "exists", "POST");
      } else if (req.method === "PUT") {
        if (!server.lease || body.metadata.resourceVersion !== server.lease.metadata.resourceVersion) throw new KubeApiError(409, "Conflict", "conflict", "PUT");
      }
      server.writes++;
      server.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++server.rv) } };
      return { status: 200, body: structuredClone(server.lease) as T };
    },
  };
  return c as unknown as KubeClient & { down: boolean };
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function elector(server: FakeLeaseServer, identity: string, clock: { t: number }, client = server.client()): LeaderElector {
  return new LeaderElector({ ...timings, client, namespace: "plumber", name: "plumber", identity, log: silentLogger(), now: () => clock.t });
}

describe("leader election", () => {
  it("creates the Lease when there is none and leads", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const a = elector(s, "a", clock);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(s.lease?.spec).toMatchObject({ holderIdentity: "a", leaseDurationSeconds: 15, leaseTransitions: 0, renewTime: microTime(clock.t) });
    expect(s.lease?.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it("a standby takes over within one lease duration of the leader's last renew, never before the leader's gate shut", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const a = elector(s, "a", clock);
    const b = elector(s, "b", clock);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    // The leader renews every retry period: the standby never gets it.
    for (let i = 0; i < 20; i++) {
      clock.t += 2_000;
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await b.tryAcquireOrRenew()).toBe(false);
    }
    // The leader dies right after its last renew. The standby saw that renew at once; its
    // previous look (2 s before) still saw the record before it, so it dates the change there.
    const lastRenew = clock.t;
    const leaderGateShut = lastRenew + timings.renewDeadlineMs;
    clock.t += 2_000;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(b.expiresAt()).toBe(lastRenew - 2_000 + 15_000);
    clock.t = b.expiresAt() - 1;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.t += 1;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(clock.t - lastRenew).toBeLessThanOrEqual(timings.leaseDurationMs);
    expect(clock.t).toBeGreaterThan(leaderGateShut);
    expect(s.lease?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
  });

  it("a slow look at the Lease dates a change to its own end (the safe side)", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const a = elector(s, "a", clock);
    const slow = s.client();
    const get = slow.getOptional.bind(slow);
    slow.getOptional = (async (path: string) => {
      clock.t += 1_000; // the apiserver took a second to answer
      return get(path);
    }) as typeof slow.getOptional;
    const b = elector(s, "b", clock, slow);
    await a.tryAcquireOrRenew();
    await b.tryAcquireOrRenew();
    clock.t += 2_000;
    await a.tryAcquireOrRenew();
    const renewed = clock.t;
    await b.tryAcquireOrRenew();
    expect(b.expiresAt()).toBe(renewed + 1_000 + 15_000);
  });

  it("a replica that was paused (frozen, stalled) dates a change it finds to now, and does not steal a live Lease", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const a = elector(s, "a", clock);
    const b = elector(s, "b", clock);
    await a.tryAcquireOrRenew();
    await b.tryAcquireOrRenew();
    // b is frozen for a minute while a keeps renewing.
    for (let i = 0; i < 30; i++) {
      clock.t += 2_000;
      await a.tryAcquireOrRenew();
    }
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(b.expiresAt()).toBe(clock.t + 15_000);
  });

  it("a Lease written with a renewTime far in the future (skewed clock) still expires by the standby's clock", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const skewed = { t: clock.t + 3_600_000 };
    const a = elector(s, "a", skewed);
    const b = elector(s, "b", clock);
    await a.tryAcquireOrRenew();
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.t += 15_000;
    expect(await b.tryAcquireOrRenew()).toBe(true);
  });

  it("isLeader turns false at the renew deadline without any request (the write gate closes on time)", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const client = s.client();
    const a = elector(s, "a", clock, client);
    const ac = new AbortController();
    // Drive run() only far enough to become leader.
    const leading = new Promise<void>((resolve) => {
      void a.run(ac.signal, async (term) => {
        resolve();
        await new Promise<void>((r) => term.addEventListener("abort", () => r()));
      });
    });
    await leading;
    expect(a.isLeader()).toBe(true);
    client.down = true;
    clock.t += 9_999;
    expect(a.isLeader()).toBe(true);
    clock.t += 1;
    expect(a.isLeader()).toBe(false);
    ac.abort();
  });

  it("a conflicting update (another replica won the race) is not leadership", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    await elector(s, "a", clock).tryAcquireOrRenew();
    const b = elector(s, "b", clock);
    const cClient = s.client();
    const c = elector(s, "c", clock, cClient);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(await c.tryAcquireOrRenew()).toBe(false);
    clock.t += 15_000;
    // Both read the expired Lease; b writes first, so c's write carries a stale resourceVersion.
    const stale = structuredClone(s.lease);
    expect(await b.tryAcquireOrRenew()).toBe(true);
    cClient.getOptional = (async () => structuredClone(stale)) as typeof cClient.getOptional;
    const writes = s.writes;
    expect(await c.tryAcquireOrRenew()).toBe(false);
    expect(s.writes).toBe(writes);
    expect(s.lease?.spec.holderIdentity).toBe("b");
    expect(c.isLeader()).toBe(false);
  });

  it("release empties the holder so a standby takes over at its next try", async () => {
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const a = elector(s, "a", clock);
    const b = elector(s, "b", clock);
    await a.tryAcquireOrRenew();
    expect(await b.tryAcquireOrRenew()).toBe(false);
    await a.release();
    expect(a.isLeader()).toBe(false);
    expect(s.lease?.spec.holderIdentity).toBe("");
    clock.t += 2_000;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(s.lease?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
  });

  it("run(): a partitioned leader stops its work by the renew deadline; the standby leads once the lease expired, not before", async () => {
    // Timers and Date on a fake clock: the bounds below are the rules, not how fast a machine is.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const s = new FakeLeaseServer();
      const fast = { leaseDurationMs: 1_000, renewDeadlineMs: 600, retryPeriodMs: 100 };
      const ca = s.client();
      const mk = (id: string, client: KubeClient) => new LeaderElector({ ...fast, client, namespace: "p", name: "p", identity: id, log: silentLogger() });
      const a = mk("a", ca);
      const b = mk("b", s.client());
      const stop = new AbortController();
      const events: string[] = [];
      let aStopped = 0;
      let bStarted = 0;
      const aRun = a.run(stop.signal, async (term) => {
        events.push("a leads");
        await new Promise<void>((r) => term.addEventListener("abort", () => r()));
        aStopped = Date.now();
        events.push("a stops");
      });
      await vi.advanceTimersByTimeAsync(150);
      const bRun = b.run(stop.signal, async (term) => {
        bStarted = Date.now();
        events.push("b leads");
        await new Promise<void>((r) => term.addEventListener("abort", () => r()));
        events.push("b stops");
      });
      await vi.advanceTimersByTimeAsync(400);
      expect(events).toEqual(["a leads"]);
      const cut = Date.now();
      ca.down = true;
      for (let i = 0; i < 250 && !bStarted; i++) await vi.advanceTimersByTimeAsync(10);
      expect(events.slice(0, 3)).toEqual(["a leads", "a stops", "b leads"]);
      // a renewed less than a retry period before the cut; it stops at its first failed renew past the renew deadline.
      expect(aStopped - cut).toBeLessThanOrEqual(600 + 100);
      expect(aStopped - cut).toBeGreaterThan(600 - 100);
      // b waits out the lease duration from the last renew it saw (at most one jittered retry after the cut), then one more retry at most.
      expect(bStarted - cut).toBeGreaterThan(1_000 - 100);
      expect(bStarted - cut).toBeLessThanOrEqual(1_000 + 2 * 120);
      stop.abort();
      await vi.advanceTimersByTimeAsync(1_000);
      await Promise.all([aRun, bRun]);
      expect(s.lease?.spec.holderIdentity).toBe("");
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses timings under which two replicas could lead at once", () => {
    expect(() => checkTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toThrow(/greater than the renew deadline/);
    expect(() => checkTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/renew deadline/);
    expect(() => checkTimings({ leaseDurationMs: 12_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toThrow(/renew deadline \+ 1.2 × retry period/);
    expect(() => checkTimings(timings)).not.toThrow();
  });
});

describe("write gate in KubeClient", () => {
  it("refuses writes (not reads, not dry-runs) before they are sent while the elector does not lead", async () => {
    const { createServer } = await import("node:http");
    const { KubeConfig } = await import("../../src/kube/kubeconfig.js");
    const { KubeClient } = await import("../../src/kube/client.js");
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const client = await KubeClient.create(kc);
    const s = new FakeLeaseServer();
    const clock = { t: 1_000_000 };
    const leaseClient = s.client();
    const a = elector(s, "a", clock, leaseClient);
    client.writeGate = () => (a.isLeader() ? undefined : "this replica is not the leader");
    const patch = { method: "PATCH" as const, path: "/api/v1/namespaces/n/configmaps/x", body: "{}", contentType: "application/apply-patch+yaml" };
    try {
      await expect(client.request(patch)).rejects.toMatchObject({ reason: "WriteRefused", status: 0 });
      await client.request({ method: "GET", path: "/api/v1/namespaces/n/configmaps/x" });
      await client.request({ ...patch, query: { dryRun: "All" } });
      expect(seen).toEqual(["GET /api/v1/namespaces/n/configmaps/x", "PATCH /api/v1/namespaces/n/configmaps/x?dryRun=All"]);
      // Leading: writes go out; past the renew deadline without a renew: refused again, at once.
      const ac = new AbortController();
      await new Promise<void>((resolve) => void a.run(ac.signal, async (term) => {
        resolve();
        await new Promise<void>((r) => term.addEventListener("abort", () => r()));
      }));
      await client.request(patch);
      expect(seen).toHaveLength(3);
      leaseClient.down = true;
      clock.t += timings.renewDeadlineMs;
      await expect(client.request(patch)).rejects.toMatchObject({ reason: "WriteRefused" });
      expect(seen).toHaveLength(3);
      expect(client.stats.writes).toBe(1);
      ac.abort();
    } finally {
      client.close();
      server.close();
    }
  });
});
