// SIGTERM during an apply, with `plumber run` as a real process: within the grace period the
// cycle in flight finishes; past it, the objects not yet written are abandoned and the state
// records exactly what was written (never more, never less). Either way the Lease is released,
// the process exits in time, and the next start converges.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { PlumberProcess } from "../bed/plumber.js";
import { StateStore } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const N = 150;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

describe("SIGTERM during an apply", () => {
  const env = testEnv();
  let admin: KubeClient;
  const procs: PlumberProcess[] = [];

  beforeAll(async () => {
    admin = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    admin?.close();
  });

  /** An app of N ConfigMaps applied one at a time (applyConcurrency 1), so the apply takes a while. */
  async function scenario(tag: string) {
    const app = uniqueName(tag).slice(0, 30).replace(/-+$/, "");
    const ns = uniqueName(`${tag}-apps`);
    const stateNs = uniqueName(`${tag}-state`);
    for (const name of [ns, stateNs]) {
      await admin.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
    }
    const repo = await newTestRepo(tag);
    const files: Record<string, string> = {};
    for (let i = 0; i < N; i++) files[`cm-${i}.yaml`] = stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${i}` }, data: { i: String(i) } });
    const head = await repo.commit(files, "many objects");
    const work = await tempDir(tag);
    await writeFile(join(work, "token"), env.gitToken);
    const configFile = join(work, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: ns, applyConcurrency: 1 }],
        state: { namespace: stateNs },
        featureGates: { apiFields: "alpha" },
      }),
    );
    const start = (grace: string) => {
      const p = PlumberProcess.start(
        ["--config", configFile, "--cache-dir", join(work, "cache"), "run", "--metrics-addr", "127.0.0.1:0", "--leader-elect", "--lease-namespace", stateNs, `--shutdown-grace=${grace}`],
        { KUBECONFIG: env.kubeconfigPath },
      );
      procs.push(p);
      return p;
    };
    const live = async () =>
      (
        await admin.request<{ items: Array<{ metadata: { name: string } }> }>({
          method: "GET",
          path: `/api/v1/namespaces/${ns}/configmaps`,
          query: { labelSelector: `plumber.dev/app=${app}` },
        })
      ).body.items.map((o) => `/ConfigMap/${ns}/${o.metadata.name}`);
    const state = () => new StateStore(admin, stateNs).load(app);
    const lease = async () => (await admin.getOptional<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${stateNs}/leases/plumber`))?.spec;
    return { app, head, start, live, state, lease };
  }

  /** SIGTERM as soon as the first object of the apply is in the cluster. */
  async function termDuringApply(p: PlumberProcess, live: () => Promise<string[]>): Promise<{ atSignal: number; tookMs: number }> {
    const atSignal = (await until("apply under way", async () => ((await live()).length > 0 ? live() : false), 60_000, 20)).length;
    const t = Date.now();
    p.signal("SIGTERM");
    const { code } = await p.exited;
    expect(code).toBe(0);
    return { atSignal, tookMs: Date.now() - t };
  }

  it("within the grace period, the apply in flight finishes and is recorded", async () => {
    const s = await scenario("term-finish");
    const p = s.start("20s");
    const { atSignal, tookMs } = await termDuringApply(p, s.live);
    console.log(`SIGTERM with ${atSignal}/${N} objects written; the apply finished and plumber exited after ${tookMs} ms`);
    expect(atSignal).toBeLessThan(N);
    const st = await s.state();
    expect(st?.revision).toBe(s.head);
    expect(st?.inventory.map((e) => e.key).sort()).toEqual((await s.live()).sort());
    expect(await s.live()).toHaveLength(N);
    expect((await s.lease())?.holderIdentity).toBe("");
    expect(p.lines.some((l) => l.msg === "stopping: no new cycles; the one in flight may finish")).toBe(true);
  });

  it("past the grace period, the rest is abandoned, the state records exactly what was written, and the next start converges", async () => {
    const s = await scenario("term-abandon");
    const p = s.start("0s");
    const { atSignal, tookMs } = await termDuringApply(p, s.live);
    const written = (await s.live()).sort();
    const st = await s.state();
    console.log(`SIGTERM with ${atSignal}/${N} objects written; ${written.length} when plumber exited after ${tookMs} ms; state: ${st?.lastResult} "${st?.message?.split("\n")[0]}"`);
    expect(written.length).toBeLessThan(N);
    // Consistent: the inventory holds every object of the revision (intent, recorded before the
    // first write), those written with their fingerprint and the rest with none ("", never
    // written); the revision is not recorded as applied, so the next start applies it.
    const inventory = st?.inventory ?? [];
    expect(inventory.filter((e) => e.fp !== "").map((e) => e.key).sort()).toEqual(written);
    expect(inventory).toHaveLength(N);
    expect(st?.revision).toBeUndefined();
    expect(st?.lastResult).toBe("Failed");
    expect(st?.message).toMatch(/shutting down/);
    expect((await s.lease())?.holderIdentity).toBe("");
    expect(p.lines.some((l) => l.msg === "grace period over: abandoning the objects not yet written (state records what was)")).toBe(true);

    // The next start converges: everything applied, the state complete, nothing written twice
    // that was already there (server-side apply of an identical object changes nothing).
    const rvBefore = new Map(
      (
        await admin.request<{ items: Array<{ metadata: { name: string; resourceVersion: string } }> }>({
          method: "GET",
          path: `/api/v1/namespaces/${written[0]?.split("/")[2]}/configmaps`,
          query: { labelSelector: `plumber.dev/app=${s.app}` },
        })
      ).body.items.map((o) => [o.metadata.name, o.metadata.resourceVersion]),
    );
    const p2 = s.start("20s");
    const done = await until("converged", async () => {
      const x = await s.state();
      return x?.revision === s.head && x.inventory.length === N && x;
    });
    expect(done.inventory.map((e) => e.key).sort()).toEqual((await s.live()).sort());
    expect(await s.live()).toHaveLength(N);
    const after = await admin.request<{ items: Array<{ metadata: { name: string; resourceVersion: string } }> }>({
      method: "GET",
      path: `/api/v1/namespaces/${written[0]?.split("/")[2]}/configmaps`,
      query: { labelSelector: `plumber.dev/app=${s.app}` },
    });
    for (const o of after.body.items) if (rvBefore.has(o.metadata.name)) expect(o.metadata.resourceVersion).toBe(rvBefore.get(o.metadata.name));
    p2.signal("SIGTERM");
    expect((await p2.exited).code).toBe(0);
  });
});
