// Bench rows of helper "engine": the engine as a library on its own control plane (cleaned up after).
//   first deploy: 500 ConfigMaps nobody owns yet (ownership lookup: one LIST, not 500 GETs).
//   steady plan: the same 500 again, nothing changed (no dry-run, no lookup: one LIST).
//   kubectl takeover: 200 ConfigMaps applied by client-side `kubectl apply`, then plumber's first apply.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { Engine } from "../src/engine/engine.js";
import { Discovery } from "../src/kube/discovery.js";
import { KubeClient, loadKubeConfig } from "../src/kube/client.js";
import { startControlPlane } from "../src/local/controlplane.js";
import type { Manifest } from "../src/types.js";

const execFileP = promisify(execFile);

function configMaps(n: number, ns: string): Manifest[] {
  return Array.from({ length: n }, (_, i) => ({
    object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${i}`, namespace: ns }, data: { i: String(i), payload: "x".repeat(200) } },
    source: { file: `cm-${i}.yaml`, line: 1 },
  }));
}

export async function benchEngine(row: (k: string, v: string) => void): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "plumber-bench-engine-"));
  const cp = await startControlPlane();
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  try {
    const discovery = new Discovery(client);
    const engine = new Engine({ client, discovery, hashKey: new Uint8Array(32).fill(1) });
    const measure = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
      const before = client.stats.snapshot();
      const t0 = performance.now();
      const out = await fn();
      const ms = performance.now() - t0;
      const after = client.stats.snapshot();
      const d = (k: "get" | "list" | "patch" | "delete") => after.byVerb[k] - before.byVerb[k];
      row(label, `${ms.toFixed(0)} ms; ${d("get")} GET, ${d("list")} LIST, ${after.dryRuns - before.dryRuns} dry-runs, ${after.writes - before.writes} writes`);
      return out;
    };
    const mkNs = (name: string) => client.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });

    await mkNs("bench-engine");
    await discovery.ensureLoaded();
    const manifests = configMaps(500, "bench-engine");
    const req = { owner: "bench", manifests, defaultNamespace: "bench-engine", previous: [], prune: true, allowEmpty: false };
    const first = await measure("engine: first deploy, 500 objects", () => engine.sync(req));
    await measure("engine: plan, 500 objects unchanged", () => engine.plan({ ...req, previous: first.inventory }));

    await mkNs("bench-kubectl");
    const file = join(work, "kubectl.yaml");
    await writeFile(file, configMaps(200, "bench-kubectl").map((m) => stringify(m.object)).join("---\n"));
    await execFileP(join(cp.binDir, "kubectl"), ["--kubeconfig", cp.kubeconfigPath, "apply", "-f", file], { maxBuffer: 16 << 20 });
    const takeover = await measure("engine: first apply after kubectl apply, 200 objects (takeover)", () =>
      engine.sync({ owner: "bench-kubectl", manifests: configMaps(200, "bench-kubectl"), defaultNamespace: "bench-kubectl", previous: [], prune: true, allowEmpty: false }),
    );
    row("engine: takeover notes", `${takeover.changeSet.entries.filter((e) => e.notes?.some((n) => n.includes("took over"))).length} of 200`);
  } finally {
    client.close();
    await cp.stop();
    await rm(work, { recursive: true, force: true });
  }
}
