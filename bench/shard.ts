// Bench rows of helper "fleet-shard": `plumber run --shard` processes (the dist/ build) over 50
// apps of one object each, on their own control plane and git server (cleaned up after).
//   apps per replica: 3 replicas, once every app's Lease is held;
//   lease requests: what the coordination costs at steady state, per replica and second (each
//     replica through its own recording proxy);
//   takeover after kill -9: from the kill to the last of the killed replica's apps held by a
//     survivor, and from the killed replica's last renew of those apps' Leases; median of a few
//     kills, each followed by a replacement replica joining.
// Lease timings are short (3 s / 2 s / 0.4 s) to keep it short; takeover scales with them.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { startControlPlane } from "../src/local/controlplane.js";
import { startGitServer } from "../src/local/gitserver.js";
import { appLeaseName } from "../src/service/shard.js";
import { stateObjectName } from "../src/state/store.js";
import { sleep } from "../src/util/pool.js";
import { startKubeProxy, type KubeProxy } from "../test/bed/kubeproxy.js";
import { PlumberProcess } from "../test/bed/plumber.js";
import { TestRepo } from "../test/bed/testrepo.js";

const APPS = Array.from({ length: Number(process.env.BENCH_SHARD_APPS ?? 50) }, (_, i) => `app-${i}`);
const KILLS = Number(process.env.BENCH_SHARD_KILLS ?? 3);
// The default timings' proportions (15 s / 10 s / 2 s), scaled: BENCH_SHARD_LEASE_MS=15000 for the defaults.
const LEASE_MS = Number(process.env.BENCH_SHARD_LEASE_MS ?? 3_000);
const RENEW_MS = Math.round((LEASE_MS * 2) / 3);
const RETRY_MS = Math.round((LEASE_MS * 2) / 15);
const STEADY_MS = 10_000;

interface Replica {
  name: string;
  proc: PlumberProcess;
  proxy: KubeProxy;
  identity: string;
}

interface Lease {
  metadata: { name: string };
  spec: { holderIdentity?: string; renewTime?: string };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

export async function benchShard(row: (k: string, v: string) => void): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-shard-"));
  const cp = await startControlPlane();
  const token = "bench-token";
  const git = await startGitServer({ root: join(work, "git"), auth: { token } });
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  const replicas: Replica[] = [];
  const stateNs = "bench-shard-state";
  const appNs = "bench-shard-apps";
  try {
    for (const name of [stateNs, appNs]) await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
    const repo = await TestRepo.create(join(work, "git"), "plumbing");
    await repo.commit(Object.fromEntries(APPS.map((a) => [`apps/${a}/cm.yaml`, stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${a}` }, data: { v: "1" } })])), "initial");
    await writeFile(join(work, "token"), token);
    const rev = await repo.head("main");

    let n = 0;
    const start = async (): Promise<Replica> => {
      const name = `r${n++}`;
      const proxy = await startKubeProxy(cp.server, cp.caPem);
      const kubeconfig = join(work, `kubeconfig-${name}`);
      await writeFile(kubeconfig, proxy.kubeconfig(cp.token), { mode: 0o600 });
      const configFile = join(work, `plumber-${name}.yaml`);
      await writeFile(
        configFile,
        stringify({
          clusters: [{ name: "local", kubeconfig }],
          repos: [{ name: "plumbing", url: git.url("plumbing"), interval: "1s", auth: { tokenFile: join(work, "token") } }],
          apps: APPS.map((a) => ({ name: a, repo: "plumbing", branch: "main", path: `apps/${a}`, cluster: "local", namespace: appNs })),
          state: { namespace: stateNs },
        }),
      );
      const proc = PlumberProcess.start(
        [
          "--config", configFile, "--cache-dir", join(work, `cache-${name}`), "run", "--shard", "--metrics-addr", "127.0.0.1:0",
          "--lease-namespace", stateNs, `--lease-duration=${LEASE_MS}ms`, `--renew-deadline=${RENEW_MS}ms`, `--retry-period=${RETRY_MS}ms`,
        ],
        { KUBECONFIG: kubeconfig },
      );
      const identity = await until(`${name} started`, async () => {
        const l = proc.lines.find((x) => x.msg === "sharding on: apps split among the replicas by Leases");
        return l ? String(l.identity) : undefined;
      }, 60_000);
      const r = { name, proc, proxy, identity };
      replicas.push(r);
      return r;
    };
    const held = async (): Promise<Map<string, string>> => {
      const res = await kube.request<{ items: Lease[] }>({ method: "GET", path: `/apis/coordination.k8s.io/v1/namespaces/${stateNs}/leases`, query: { labelSelector: "plumber.dev/shard=shard" }, list: true });
      const out = new Map<string, string>();
      for (const l of res.body.items) for (const app of APPS.filter((a) => appLeaseName(a) === l.metadata.name)) if (l.spec.holderIdentity) out.set(app, l.spec.holderIdentity);
      return out;
    };
    /** Every app held by the live replicas, spread as the assignment over exactly them wants (each member's own metrics agree). */
    const settled = async (live: Replica[]): Promise<Map<string, string> | undefined> => {
      const h = await held();
      const ids = new Set(live.map((r) => r.identity));
      if (h.size !== APPS.length || ![...h.values()].every((x) => ids.has(x))) return undefined;
      for (const r of live) {
        const text = await (await fetch(`${await r.proc.baseUrl()}/metrics`)).text();
        const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
        if (gauge("plumber_shard_members") !== live.length) return undefined;
        // Converged: every handover done.
        if (gauge("plumber_shard_owned_apps") !== gauge("plumber_shard_assigned_apps")) return undefined;
      }
      return h;
    };
    // Also wait for the first apply, so the kills below happen at steady state.
    const applied = async () => {
      for (const a of APPS) if ((await kube.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(a)}`))?.data?.revision !== rev) return false;
      return true;
    };

    let live = [await start(), await start(), await start()];
    let h = await until("3 replicas settled", () => settled(live), 120_000);
    await until("first apply", applied, 120_000);
    row(`shard: apps per replica (3 replicas, ${APPS.length} apps)`, live.map((r) => [...h.values()].filter((x) => x === r.identity).length).join(" / "));

    // Steady-state Lease traffic.
    const leaseReqs = (r: Replica) => r.proxy.log.filter((x) => x.path.includes("/apis/coordination.k8s.io/")).length;
    const before = live.map(leaseReqs);
    await sleep(STEADY_MS);
    const perSec = live.map((r, i) => ((leaseReqs(r) - (before[i] as number)) * 1000) / STEADY_MS);
    row(`shard: lease requests per replica per second (steady, ${APPS.length} apps, retry ${RETRY_MS / 1000} s)`, perSec.map((x) => x.toFixed(1)).join(" / "));

    const sinceKill: number[] = [];
    const sinceRenew: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const victim = live[0] as Replica;
      const orphans = [...h].filter(([, x]) => x === victim.identity).map(([a]) => a);
      await victim.proc.kill();
      const killedAt = Date.now();
      const lastRenew = Math.max(
        ...victim.proxy.log
          .filter((x) => x.method === "PUT" && x.status < 300 && orphans.some((a) => x.path.endsWith(`/leases/${appLeaseName(a)}`)))
          .map((x) => x.start),
      );
      live = live.slice(1);
      await until("takeover", async () => {
        const now = await held();
        return orphans.every((a) => now.get(a) !== undefined && now.get(a) !== victim.identity);
      }, 60_000, 20);
      const takenAt = Date.now();
      sinceKill.push(takenAt - killedAt);
      sinceRenew.push(takenAt - lastRenew);
      await victim.proxy.close();
      live.push(await start());
      h = await until("replacement settled", () => settled(live), 120_000);
    }
    row(`shard: takeover after kill -9, from the kill (median of ${KILLS}, lease ${LEASE_MS / 1000} s)`, `${(median(sinceKill) / 1000).toFixed(2)} s (${sinceKill.map((x) => (x / 1000).toFixed(2)).join(", ")})`);
    row(`shard: takeover after kill -9, from the last renew (median of ${KILLS})`, `${(median(sinceRenew) / 1000).toFixed(2)} s = ${(median(sinceRenew) / LEASE_MS).toFixed(2)} × lease duration`);
  } finally {
    await Promise.all(replicas.map((r) => r.proc.kill()));
    await Promise.all(replicas.map((r) => r.proxy.close()));
    kube.close();
    await git.stop();
    await cp.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`bench shard: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
