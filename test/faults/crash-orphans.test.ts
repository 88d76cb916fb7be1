// A crash orphans nothing: `plumber apply --once` (a real child process, the built CLI) applying
// a commit that adds 1,000 objects is SIGKILLed at a random point of its writes (repeated until a
// kill lands mid-write: between 1 and 999 of the objects exist), git then drops those objects,
// and a restarted plumber prunes every one it wrote. The intent record (previous ∪ desired,
// persisted before the first write) is what makes that possible.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import type { TestRepo } from "../bed/testrepo.js";
import { PlumberProcess } from "../bed/plumber.js";
import { StateStore } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const OBJECTS = 1000;
const ATTEMPTS = 6;

const cm = (name: string, data: Record<string, string>) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });

interface Setup {
  repo: TestRepo;
  app: string;
  namespace: string;
  stateNamespace: string;
  args: string[];
}

describe("SIGKILL in the middle of a 1,000-object apply", () => {
  const env = testEnv();
  let kube: KubeClient;
  const running: PlumberProcess[] = [];

  afterAll(async () => {
    for (const p of running) await p.kill();
    kube?.close();
  });

  const labelled = async (s: Setup): Promise<string[]> => {
    const res = await kube.request<{ items: { metadata: { name: string } }[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${s.namespace}/configmaps`,
      query: { labelSelector: `plumber.dev/app=${s.app}` },
      accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
      list: true,
    });
    return res.body.items.map((i) => i.metadata.name);
  };

  const applyOnce = async (s: Setup): Promise<void> => {
    const p = PlumberProcess.start(s.args);
    running.push(p);
    const { code } = await p.exited;
    if (code !== 0) throw new Error(`plumber apply --once exited ${code}:\n${p.tail()}`);
  };

  async function setup(): Promise<Setup> {
    const repo = await newTestRepo("crash");
    await repo.commit({ "base.yaml": cm("base", { v: "1" }) }, "initial");
    const app = uniqueName("crash").slice(0, 40).replace(/-+$/, "");
    const namespace = uniqueName("crash-ns");
    const stateNamespace = uniqueName("crash-state");
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }) });
    const dir = await tempDir("crash");
    await writeFile(join(dir, "token"), env.gitToken);
    const configFile = join(dir, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace }],
        state: { namespace: stateNamespace },
      }),
    );
    return { repo, app, namespace, stateNamespace, args: ["--config", configFile, "--cache-dir", join(dir, "cache"), "apply", "--once"] };
  }

  it("leaves no object it wrote unknown: after git drops them, the restarted plumber prunes every one", async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    const bulk: Record<string, string> = {};
    for (let i = 0; i < OBJECTS; i++) bulk[`bulk/cm-${String(i).padStart(4, "0")}.yaml`] = cm(`bulk-${i}`, { i: String(i) });
    const dropped: Record<string, null> = Object.fromEntries(Object.keys(bulk).map((k) => [k, null]));

    const tries: string[] = [];
    let landed: { s: Setup; written: number } | undefined;
    for (let attempt = 0; attempt < ATTEMPTS && !landed; attempt++) {
      const s = await setup();
      await applyOnce(s);
      expect(await labelled(s)).toEqual(["base"]);
      await s.repo.commit(bulk, `add ${OBJECTS} objects`);

      // A random point of the write phase: once at least k of the objects exist.
      const k = 1 + Math.floor(Math.random() * (OBJECTS - 1));
      const p = PlumberProcess.start(s.args);
      running.push(p);
      while (p.running) {
        if ((await labelled(s)).length - 1 >= k) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await p.kill();
      const count = (await labelled(s)).length - 1;
      tries.push(`k=${k}: ${count} written when killed`);
      if (count >= 1 && count < OBJECTS) landed = { s, written: count };
    }
    console.log(`kills: ${tries.join("; ")}`);
    expect(landed, tries.join("; ")).toBeDefined();
    const { s, written } = landed!;

    // What the killed process recorded before its first write: every object it meant to create.
    const intent = await new StateStore(kube, s.stateNamespace).load(s.app);
    expect(intent?.inventory.length).toBe(OBJECTS + 1);

    // git drops the objects; a restarted plumber prunes all that the killed one wrote.
    await s.repo.commit(dropped, `drop the ${OBJECTS} objects`);
    await applyOnce(s);
    expect(await labelled(s)).toEqual(["base"]);
    const state = await new StateStore(kube, s.stateNamespace).load(s.app);
    expect(state?.revision).toBe(await s.repo.head("main"));
    expect(state?.inventory.map((e) => e.key)).toEqual([`/ConfigMap/${s.namespace}/base`]);
    console.log(`killed with ${written} of ${OBJECTS} objects written; all pruned after restart`);
  });
});
