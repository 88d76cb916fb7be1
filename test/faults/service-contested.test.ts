// The case against `plumber run` as a real process: a controller-like competitor takes a
// field back (Update as "hpa-like") within 200 ms whenever plumber has it, for 20 reconciles at a
// 1 s interval. Before the backoff plumber rewrote it every reconcile; now its
// writes of the object are logarithmic in the cycles (counted by resourceVersion), and the
// manager is named in `plumber status` (another process) and a FieldsContested Event.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { PlumberProcess, plumberMain } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

/** Reconciles the contest lasts (at a 1 s interval, about 20 s). */
const CYCLES = 20;

interface Cm {
  metadata: { resourceVersion: string; managedFields?: Array<{ manager: string; fieldsV1?: { "f:data"?: Record<string, unknown> } }> };
  data?: Record<string, string>;
}

const ownsV = (o: Cm, m: string) => (o.metadata.managedFields ?? []).some((e) => e.manager === m && e.fieldsV1?.["f:data"]?.["f:v"] !== undefined);

describe("a field contested by a controller (plumber run)", () => {
  const env = testEnv();
  const app = uniqueName("contest").slice(0, 30).replace(/-+$/, "");
  const appNs = uniqueName("contest-ns");
  const stateNs = uniqueName("contest-state");
  let kube: KubeClient;
  let p: PlumberProcess | undefined;
  let configFile: string;
  let dir: string;

  beforeAll(async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: appNs } }) });
    const repo = await newTestRepo("contest");
    await repo.commit({ "a.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { v: "git" } }) }, "initial");
    dir = await tempDir("contest");
    await writeFile(join(dir, "token"), env.gitToken);
    configFile = join(dir, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: appNs }],
        state: { namespace: stateNs },
      }),
    );
  });

  afterAll(async () => {
    await p?.kill();
    kube?.close();
  });

  it("backs off instead of rewriting the field every interval, and names the manager", async () => {
    p = PlumberProcess.start(["--config", configFile, "--cache-dir", join(dir, "cache"), "run", "--metrics-addr", "127.0.0.1:0", "--no-leader-elect"], { KUBECONFIG: env.kubeconfigPath });
    const path = `/api/v1/namespaces/${appNs}/configmaps/a`;
    for (const t = Date.now(); ; ) {
      const st = await kube.getOptional<Cm>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
      if (st?.data?.revision) break;
      if (Date.now() - t > 60_000) throw new Error("never applied");
      await new Promise((r) => setTimeout(r, 200));
    }
    const cycles0 = (await p.scrape()).value("plumber_reconcile_total", { app }) ?? 0;
    let repairs = -1; // the first time plumber holds the field is its apply of the revision
    let lastRv = "";
    let competing = true;
    let windowOver = false;
    // The competitor runs until the end of the test (status is read while the contest goes on).
    const competitor = (async () => {
      while (competing) {
        const live = (await kube.getOptional<Cm>(path)) as Cm;
        if (ownsV(live, "plumber")) {
          if (live.metadata.resourceVersion !== lastRv && !windowOver) repairs++;
          const res = await kube.request<Cm>({ method: "PUT", path, query: { fieldManager: "hpa-like" }, body: JSON.stringify({ ...live, data: { ...live.data, v: `hpa-${Date.now()}` } }) }).catch(() => undefined);
          if (res) lastRv = res.body.metadata.resourceVersion;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      // Measured in reconciles, not seconds: however slow the machine, N cycles of contest.
      const cyclesNow = async () => ((await p!.scrape()).value("plumber_reconcile_total", { app }) ?? 0) - cycles0;
      for (const t = Date.now(); (await cyclesNow()) < CYCLES; ) {
        if (Date.now() - t > 180_000) throw new Error(`fewer than ${CYCLES} reconciles in 180 s`);
        await new Promise((r) => setTimeout(r, 250));
      }
      windowOver = true;
      const m = await p.scrape();
      const cycles = (m.value("plumber_reconcile_total", { app }) ?? 0) - cycles0;
      console.log(`contested for ${cycles} reconciles: ${repairs} repairs of the object (before the backoff: one per reconcile)`);
      // Backed off (retries at growing intervals), and still retrying: not given up.
      expect(repairs).toBeGreaterThanOrEqual(2);
      expect(repairs).toBeLessThanOrEqual(Math.ceil(Math.log2(cycles + 1)) + 1);
      expect(m.value("plumber_contested_objects", { app })).toBe(1);

      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [plumberMain(), "--config", configFile, "--cache-dir", join(dir, "cache-status"), "--log-level", "error", "status", "--json"], { env: { ...process.env, KUBECONFIG: env.kubeconfigPath }, timeout: 60_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      const row = (JSON.parse(out) as Record<string, string>[])[0];
      expect(row?.contested).toBe(`ConfigMap ${appNs}/a by hpa-like`);
      const events = await kube.request<{ items: Array<{ reason: string; note: string; regarding: { name: string } }> }>({ method: "GET", path: `/apis/events.k8s.io/v1/namespaces/${stateNs}/events` });
      const contested = events.body.items.filter((e) => e.regarding.name === stateObjectName(app) && e.reason === "FieldsContested");
      expect(contested.length).toBeGreaterThanOrEqual(1);
      expect(contested[0]?.note).toContain('taken back by "hpa-like"');
    } finally {
      competing = false;
      await competitor;
    }
  });
});
