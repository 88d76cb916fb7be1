// Sharding with real `plumber run --shard` processes on the real control plane: three replicas
// split 12 apps (each app's Lease held by exactly one, within the load bound); one is killed
// (SIGKILL: no release) and its apps are taken over once their Leases have expired; a fourth
// joins and takes its share, handed over by the old owners. Each replica talks to the apiserver
// through its own recording proxy, so every write is attributed to the replica that sent it:
// every write of an app's objects or state is made under that replica's Lease of the app (held,
// renewed less than a lease duration before, nobody else's since), hence never two writers at
// once. One scenario, each step starting where the last one left off. How fast takeover is, is
// measured by the bench (bench/shard.ts), not asserted.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { appLeaseName } from "../../src/service/shard.js";
import { stateObjectName } from "../../src/state/store.js";
import { startKubeProxy, type KubeProxy, type Recorded } from "../bed/kubeproxy.js";
import { PlumberProcess } from "../bed/plumber.js";
import type { TestRepo } from "../bed/testrepo.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const LEASE_MS = 3_000;
const RENEW_MS = 2_000;
const RETRY_MS = 400;
const APPS = Array.from({ length: 12 }, (_, i) => `app-${i}`);
/** ceil(1.25 × 12 / 3): the most apps one of three replicas may own (src/service/shard-assign.ts). */
const ROOM = 5;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 40_000, everyMs = 150): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const cm = (name: string, v: string) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { v } });

interface Lease {
  metadata: { name: string };
  spec: { holderIdentity?: string; renewTime?: string };
}

interface Replica {
  name: string;
  proc: PlumberProcess;
  proxy: KubeProxy;
  identity: string;
}

/** The app a recorded request writes (its objects or its state record), if it is such a write. */
function appWritten(r: Recorded, appNs: string, stateNs: string): string | undefined {
  if (r.method === "GET" || r.query.get("dryRun") === "All" || r.status >= 300) return undefined;
  const obj = new RegExp(`^/api/v1/namespaces/${appNs}/configmaps/cm-(app-\\d+)$`).exec(r.path);
  if (obj) return obj[1];
  const state = new RegExp(`^/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName("")}(app-\\d+)(\\..*)?$`).exec(r.path);
  return state?.[1];
}

/** A successful write of a shard's Lease: the apps it guards, and who it made holder (empty: released). */
function leaseWrite(r: Recorded, stateNs: string): { apps: string[]; holder: string } | undefined {
  if ((r.method !== "PUT" && r.method !== "POST") || r.status >= 300) return undefined;
  if (!r.path.startsWith(`/apis/coordination.k8s.io/v1/namespaces/${stateNs}/leases`)) return undefined;
  const lease = JSON.parse(r.body) as Lease;
  const apps = APPS.filter((a) => appLeaseName(a) === lease.metadata.name);
  return apps.length === 0 ? undefined : { apps, holder: lease.spec.holderIdentity ?? "" };
}

describe("sharding: plumber run --shard processes", () => {
  const env = testEnv();
  const stateNs = uniqueName("sh-state");
  const appNs = uniqueName("sh-apps");
  let admin: KubeClient;
  let repo: TestRepo;
  let work: string;
  const replicas: Replica[] = [];

  const leases = async (): Promise<Map<string, string>> => {
    const res = await admin.request<{ items: Lease[] }>({ method: "GET", path: `/apis/coordination.k8s.io/v1/namespaces/${stateNs}/leases`, query: { labelSelector: "plumber.dev/shard=shard" }, list: true });
    const out = new Map<string, string>();
    for (const l of res.body.items) {
      for (const app of APPS.filter((a) => appLeaseName(a) === l.metadata.name)) if (l.spec.holderIdentity) out.set(app, l.spec.holderIdentity);
    }
    return out;
  };
  const revisionOf = async (app: string) => (await admin.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`))?.data?.revision;
  const allAt = async (rev: string) => (await Promise.all(APPS.map(revisionOf))).every((r) => r === rev);
  const commitAll = (v: string) => repo.commit(Object.fromEntries(APPS.map((a) => [`apps/${a}/cm.yaml`, cm(`cm-${a}`, v)])), `v${v}`);
  /** Every app's Lease held, by the given replicas only, and each of them owning what its metrics say. */
  const settled = async (live: Replica[]): Promise<Map<string, string> | false> => {
    const held = await leases();
    if (held.size !== APPS.length) return false;
    const ids = new Set(live.map((r) => r.identity));
    if (![...held.values()].every((h) => ids.has(h))) return false;
    for (const r of live) {
      const m = await r.proc.scrape();
      if (m.value("plumber_shard_members") !== live.length) return false;
      if (m.value("plumber_shard_owned_apps") !== [...held.values()].filter((h) => h === r.identity).length) return false;
      // Converged: every handover done.
      if (m.value("plumber_shard_owned_apps") !== m.value("plumber_shard_assigned_apps")) return false;
    }
    return held;
  };

  const start = async (name: string): Promise<Replica> => {
    const proxy = await startKubeProxy(env.kubeServer, env.kubeCaPem);
    const kubeconfig = join(work, `kubeconfig-${name}`);
    await writeFile(kubeconfig, proxy.kubeconfig(env.kubeToken), { mode: 0o600 });
    const configFile = join(work, `plumber-${name}.yaml`);
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig }],
        // Every app of the repo at once, so that every app can be caught in the middle of a write (step 3).
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", concurrency: APPS.length, auth: { tokenFile: join(work, "token") } }],
        apps: APPS.map((a) => ({ name: a, repo: "plumbing", branch: "main", path: `apps/${a}`, cluster: "local", namespace: appNs })),
        state: { namespace: stateNs },
      }),
    );
    const proc = PlumberProcess.start(
      [
        "--config", configFile, "--cache-dir", join(work, `cache-${name}`), "run", "--shard",
        "--metrics-addr", "127.0.0.1:0", "--lease-namespace", stateNs,
        `--lease-duration=${LEASE_MS}ms`, `--renew-deadline=${RENEW_MS}ms`, `--retry-period=${RETRY_MS}ms`,
      ],
      { KUBECONFIG: kubeconfig },
    );
    const identity = String((await proc.waitFor((l) => l.msg === "sharding on: apps split among the replicas by Leases")).identity);
    const r = { name, proc, proxy, identity };
    replicas.push(r);
    return r;
  };

  /**
   * Every write of an app, by any replica, was made while that replica held the app's Lease: its
   * last Lease write before it made it holder less than a lease duration earlier, and no other
   * replica took the Lease in between. Returns how many writes each replica made per app.
   */
  const writesUnderLease = (): Map<string, Map<string, number>> => {
    const events: Array<{ at: number; replica: Replica; kind: "write" | "lease"; app: string; holder?: string }> = [];
    for (const r of replicas) {
      for (const rec of r.proxy.log) {
        const app = appWritten(rec, appNs, stateNs);
        if (app) events.push({ at: rec.start, replica: r, kind: "write", app });
        const lw = leaseWrite(rec, stateNs);
        // A Lease write counts from when the apiserver may have stored it (its answer, at the latest).
        for (const leased of lw?.apps ?? []) events.push({ at: rec.end, replica: r, kind: "lease", app: leased, holder: lw?.holder ?? "" });
      }
    }
    events.sort((x, y) => x.at - y.at);
    const lastLease = new Map<string, { at: number; holder: string }>();
    const counts = new Map<string, Map<string, number>>();
    for (const e of events) {
      if (e.kind === "lease") {
        lastLease.set(e.app, { at: e.at, holder: e.holder ?? "" });
        continue;
      }
      const l = lastLease.get(e.app);
      expect(l?.holder, `${e.replica.name} wrote ${e.app} at ${e.at} without holding its Lease`).toBe(e.replica.identity);
      expect(e.at - (l as { at: number }).at, `${e.replica.name} wrote ${e.app} on a Lease older than a lease duration`).toBeLessThan(LEASE_MS);
      const per = counts.get(e.app) ?? new Map<string, number>();
      per.set(e.replica.name, (per.get(e.replica.name) ?? 0) + 1);
      counts.set(e.app, per);
    }
    return counts;
  };

  beforeAll(async () => {
    admin = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    for (const name of [stateNs, appNs]) {
      await admin.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
    }
    repo = await newTestRepo("sh");
    await commitAll("1");
    work = await tempDir("sh");
    await writeFile(join(work, "token"), env.gitToken);
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.proc.kill()));
    await Promise.all(replicas.map((r) => r.proxy.close()));
    admin?.close();
  });

  it("three replicas split the apps; a killed one's apps are taken over after its Leases expired; a fourth joins and gets its share; every write is under the writer's Lease", async () => {
    // 1. Three replicas: each app owned by exactly one, within the load bound, and applied.
    const [a, b, c] = [await start("a"), await start("b"), await start("c")];
    const rev1 = await repo.head("main");
    const held = await until("three replicas settled", () => settled([a, b, c]));
    const per = (h: Map<string, string>, r: Replica) => [...h.values()].filter((x) => x === r.identity).length;
    for (const r of [a, b, c]) {
      expect(per(held, r)).toBeGreaterThanOrEqual(APPS.length - 2 * ROOM);
      expect(per(held, r)).toBeLessThanOrEqual(ROOM);
    }
    await until("rev1 applied everywhere", () => allAt(rev1));
    const rev2 = await commitAll("2");
    await until("rev2 applied everywhere", () => allAt(rev2));

    // 2. kill -9 c: its apps go to a and b, each only after c's Lease of it expired.
    const orphans = [...(await leases())].filter(([, h]) => h === c.identity).map(([app]) => app);
    expect(orphans.length).toBeGreaterThan(0);
    await c.proc.kill();
    const killedAt = Date.now();
    const rev3 = await commitAll("3");
    const after = await until("a and b settled", () => settled([a, b]));
    await until("rev3 applied everywhere", () => allAt(rev3));
    const lastRenewByC = (app: string) =>
      Math.max(...c.proxy.log.filter((r) => leaseWrite(r, stateNs)?.apps.includes(app) && leaseWrite(r, stateNs)?.holder === c.identity).map((r) => r.start));
    for (const app of orphans) {
      const heir = [a, b].find((r) => r.identity === after.get(app)) as Replica;
      expect(heir, app).toBeDefined();
      const takeover = heir.proxy.log.find((r) => r.start > killedAt && leaseWrite(r, stateNs)?.apps.includes(app) && leaseWrite(r, stateNs)?.holder === heir.identity);
      expect(takeover, `${heir.name} took ${app}'s Lease`).toBeDefined();
      const gap = (takeover as Recorded).start - lastRenewByC(app);
      // Taken only once c's gate had shut (its renew deadline passed), as the Lease rules allow.
      expect(gap, app).toBeGreaterThan(RENEW_MS);
      const firstWrite = heir.proxy.log.find((r) => r.start > killedAt && appWritten(r, appNs, stateNs) === app);
      expect(firstWrite && firstWrite.start >= (takeover as Recorded).end, `${heir.name} wrote ${app} only after taking its Lease`).toBe(true);
    }
    console.log(`takeover after kill -9: ${orphans.length} apps, ${Date.now() - killedAt} ms until settled (lease ${LEASE_MS} ms)`);

    // 3. A fourth replica joins while a and b are in the middle of writing every app (their
    // proxies hold the writes): the apps it should get stay with their old owners, which keep
    // their Leases until their turns are over, and it writes none of them meanwhile.
    const isAppWrite = (r: Recorded) => appWritten(r, appNs, stateNs) !== undefined && r.path.includes(`/namespaces/${appNs}/`);
    a.proxy.hold = isAppWrite;
    b.proxy.hold = isAppWrite;
    const rev4 = await commitAll("4");
    await until("every app's write held", async () => new Set([...a.proxy.held, ...b.proxy.held].map((r) => appWritten(r, appNs, stateNs))).size === APPS.length);
    const d = await start("d");
    const leaseLooks = (r: Replica) => r.proxy.log.filter((x) => x.method === "GET" && x.path.endsWith("/leases") && x.query.get("labelSelector") === "plumber.dev/shard=shard").length;
    // Long enough for d to have written if it were going to: it looks at the Leases six times (two poll intervals).
    await until("d has looked six times", async () => (await d.proc.scrape()).value("plumber_shard_members") === 3 && leaseLooks(d) >= 6);
    const whileHeld = await leases();
    expect([...whileHeld.values()].filter((h) => h === d.identity)).toEqual([]);
    expect(d.proxy.log.filter((r) => appWritten(r, appNs, stateNs) !== undefined)).toEqual([]);
    a.proxy.release();
    b.proxy.release();
    const rejoined = await until("a, b and d settled", () => settled([a, b, d]));
    expect(per(rejoined, d)).toBeGreaterThanOrEqual(APPS.length - 2 * ROOM);
    await until("rev4 applied everywhere", () => allAt(rev4));
    const rev5 = await commitAll("5");
    await until("rev5 applied everywhere", () => allAt(rev5));

    // 4. No write of any app without its Lease, by any replica, over the whole run.
    const counts = writesUnderLease();
    expect([...counts.keys()].sort()).toEqual([...APPS].sort());
    // rev5 of d's apps was written by d.
    for (const [app, holder] of rejoined) if (holder === d.identity) expect(counts.get(app)?.get("d") ?? 0, app).toBeGreaterThan(0);
  });
});
