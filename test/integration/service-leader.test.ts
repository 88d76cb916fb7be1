// Leader election with two real `plumber run` processes on the real control plane: one leads and
// writes, the other stands by and writes nothing; a frozen leader (SIGSTOP: it cannot renew, then
// wakes up believing it leads) loses the Lease, is taken over once its lease has expired (never
// before its renew deadline), and writes nothing once it wakes; a killed leader (SIGKILL: no
// release) is taken over likewise, and the new leader resumes from the state in the cluster
// without re-applying anything. One scenario, each step starting where the last one left off, so
// it is one test. How fast a takeover is, is not asserted (timing on a shared machine).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import type { TestRepo } from "../bed/testrepo.js";
import { PlumberProcess } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

// Shorter than the defaults (15s/10s/2s) to keep the test short; the same rules.
const LEASE_MS = 4_000;
const RENEW_MS = 2_500;
const RETRY_MS = 500;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const cm = (name: string, v: string) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { v } });
const micro = (s: string | undefined): number => Date.parse(String(s).replace(/\.(\d{3})\d*Z$/, ".$1Z"));

interface Lease {
  spec: { holderIdentity?: string; renewTime?: string; acquireTime?: string; leaseTransitions?: number };
}

describe("leader election: two plumber processes", () => {
  const env = testEnv();
  const stateNs = uniqueName("le-state");
  const appNs = uniqueName("le-apps");
  const app = uniqueName("le-app").slice(0, 30).replace(/-+$/, "");
  let admin: KubeClient;
  let repo: TestRepo;
  let a: PlumberProcess;
  let b: PlumberProcess;
  let start: (name: string) => PlumberProcess;
  const writes = async (p: PlumberProcess) => (await p.scrape()).value("plumber_kube_api_writes_total") ?? 0;
  const lease = async () => (await admin.getOptional<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${stateNs}/leases/plumber`)) as Lease;
  const state = () => admin.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
  const rv = async (name: string) => (await admin.getOptional<{ metadata: { resourceVersion: string } }>(`/api/v1/namespaces/${appNs}/configmaps/${name}`))?.metadata.resourceVersion;
  const identity = async (p: PlumberProcess) => String((await p.waitFor((l) => l.msg === "leader election on")).identity);

  beforeAll(async () => {
    admin = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    for (const name of [stateNs, appNs]) {
      await admin.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
    }
    repo = await newTestRepo("le");
    await repo.commit({ "one.yaml": cm("one", "1"), "two.yaml": cm("two", "1"), "three.yaml": cm("three", "1") }, "initial");
    const work = await tempDir("le");
    await writeFile(join(work, "token"), env.gitToken);
    const configFile = join(work, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: appNs }],
        state: { namespace: stateNs },
      }),
    );
    start = (name) =>
      PlumberProcess.start(
        [
          "--config", configFile, "--cache-dir", join(work, `cache-${name}`), "run",
          "--metrics-addr", "127.0.0.1:0", "--leader-elect", "--lease-namespace", stateNs,
          `--lease-duration=${LEASE_MS}ms`, `--renew-deadline=${RENEW_MS}ms`, `--retry-period=${RETRY_MS}ms`,
        ],
        { KUBECONFIG: env.kubeconfigPath },
      );
  });

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    admin?.close();
  });

  it("one leads and the standby writes nothing; a frozen leader is taken over and writes nothing when it wakes; a killed one is taken over and its successor re-applies nothing; SIGTERM releases the Lease", async () => {
    // 1. One leads and writes; the standby writes nothing.
    {
      a = start("a");
      await a.waitFor((l) => l.msg === "leading");
      b = start("b");
      await b.waitFor((l) => l.msg === "leader election: standing by");
      const rev1 = await repo.head("main");
      await until("rev1 applied", async () => (await state())?.data?.revision === rev1);
      // Settled: a couple of unchanged cycles.
      await until("steady state", async () => ((await a.scrape()).value("plumber_reconcile_total", { result: "unchanged" }) ?? 0) >= 2);
      expect((await lease()).spec.holderIdentity).toBe(await identity(a));
      const [ma, mb] = [await a.scrape(), await b.scrape()];
      expect(ma.value("plumber_leader")).toBe(1);
      expect(mb.value("plumber_leader")).toBe(0);
      expect(ma.value("plumber_objects_applied_total", { action: "created" })).toBe(3);
      expect(await writes(a)).toBeGreaterThanOrEqual(4);
      expect(await writes(b)).toBe(0);
      expect(mb.value("plumber_reconcile_total")).toBeUndefined();
      // Both are ready: a standby serves probes and metrics too.
      expect((await fetch(`${await b.baseUrl()}/readyz`)).status).toBe(200);
    }
    // 2. A frozen leader is taken over once its lease expires and writes nothing when it wakes.
    {
      const aWrites = await writes(a);
      const aIdentity = await identity(a);
      const bIdentity = await identity(b);
      a.signal("SIGSTOP");
      const frozenAt = Date.now();
      const lastRenew = micro((await lease()).spec.renewTime);
      const rev2 = await repo.commit({ "one.yaml": cm("one", "2") }, "bump one");

      const taken = await until("takeover", async () => {
        const l = await lease();
        return l.spec.holderIdentity === bIdentity && l;
      });
      const takeoverMs = micro(taken.spec.acquireTime) - lastRenew;
      const sinceFreezeMs = micro(taken.spec.acquireTime) - frozenAt;
      console.log(`takeover after a frozen leader: ${takeoverMs} ms after its last renew, ${sinceFreezeMs} ms after the freeze (lease ${LEASE_MS} ms)`);
      // Only once the old leader's gate had shut (its renew deadline passed).
      expect(takeoverMs).toBeGreaterThan(RENEW_MS);
      expect(taken.spec.leaseTransitions).toBe(1);

      // b resumes from the state a recorded: only the changed object is written.
      await until("rev2 applied by b", async () => (await state())?.data?.revision === rev2);
      const unchangedRv = { two: await rv("two"), three: await rv("three"), one: await rv("one") };
      const mb = await b.scrape();
      expect(mb.value("plumber_objects_applied_total", { action: "configured" })).toBe(1);
      expect(mb.value("plumber_objects_applied_total", { action: "created" })).toBeUndefined();
      const bWrites = await writes(b);

      // a wakes up: its renew deadline has long passed, so its gate is shut before it learns of b.
      a.signal("SIGCONT");
      await a.waitFor((l) => l.msg === "leader election: lost the lease; stopping work", 10_000);
      await until("a standing by", async () => (await a.scrape()).value("plumber_leader") === 0);
      // Long enough for a to have written if it were going to: b completes two more cycles.
      const bCycles = async () => (await b.scrape()).value("plumber_reconcile_total", { result: "unchanged" }) ?? 0;
      const seen = await bCycles();
      await until("two more cycles of b", async () => (await bCycles()) >= seen + 2);
      expect(await writes(a)).toBe(aWrites);
      expect({ two: await rv("two"), three: await rv("three"), one: await rv("one") }).toEqual(unchangedRv);
      expect((await admin.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${appNs}/configmaps/one`))?.data.v).toBe("2");
      expect((await lease()).spec.holderIdentity).toBe(bIdentity);
      console.log(`writes: a ${aWrites} (the same after waking), b ${bWrites}; identities a=${aIdentity} b=${bIdentity}`);
    }
    // 3. A killed leader is taken over once its lease expires; the new leader re-applies nothing.
    {
      const aIdentity = await identity(a);
      const before = await lease();
      expect(before.spec.holderIdentity).not.toBe(aIdentity);
      const aWrites = await writes(a);
      const aApplied = (await a.scrape()).value("plumber_objects_applied_total") ?? 0;
      await b.kill();
      const killedAt = Date.now();
      const lastRenew = micro((await lease()).spec.renewTime);
      const taken = await until("takeover", async () => {
        const l = await lease();
        return l.spec.holderIdentity === aIdentity && l;
      });
      const takeoverMs = micro(taken.spec.acquireTime) - lastRenew;
      const sinceKillMs = micro(taken.spec.acquireTime) - killedAt;
      console.log(`takeover after a killed leader: ${takeoverMs} ms after its last renew, ${sinceKillMs} ms after the kill (lease ${LEASE_MS} ms)`);
      expect(takeoverMs).toBeGreaterThan(RENEW_MS);

      // a's new term starts from the persisted state: a few unchanged cycles, no writes at all.
      await a.waitFor((l) => l.msg === "plumber running" && a.lines.filter((x) => x.msg === "plumber running").length >= 2, 10_000);
      await until("unchanged cycles", async () => {
        const m = await a.scrape();
        return (m.value("plumber_reconcile_total", { result: "unchanged" }) ?? 0) >= 4 && m;
      });
      expect(await writes(a)).toBe(aWrites);
      expect((await a.scrape()).value("plumber_objects_applied_total") ?? 0).toBe(aApplied);
      expect((await a.scrape()).value("plumber_leader")).toBe(1);
    }
    // 4. SIGTERM: the leader releases the Lease and exits.
    {
      a.signal("SIGTERM");
      const { code } = await a.exited;
      expect(code).toBe(0);
      expect((await lease()).spec.holderIdentity).toBe("");
    }
  });
});
