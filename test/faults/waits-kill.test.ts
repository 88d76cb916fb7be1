// kill -9 in the middle of a pre-check under `plumber run` (the built CLI, a real child process):
// the restarted plumber resumes the same wait from the app's state and finds the same run, never
// a second one; meanwhile a sibling on the same repo keeps deploying. Waits on what the cluster
// and the log show, never on the clock.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { checkObjectName } from "../../src/checks/run.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { parsePreChecks } from "../../src/reconcile/verify-progress.js";
import { StateStore } from "../../src/state/store.js";
import { sleep } from "../../src/util/pool.js";
import { PlumberProcess } from "../bed/plumber.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const cm = (name: string, data: Record<string, string>) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });

describe("SIGKILL in the middle of a pre-check", () => {
  const env = testEnv();
  let kube: KubeClient;
  const running: PlumberProcess[] = [];

  afterAll(async () => {
    for (const p of running) await p.kill();
    kube?.close();
  });

  async function until<T>(what: string, f: () => Promise<T | undefined>, tries = 600): Promise<T> {
    for (let i = 0; i < tries; i++) {
      const v = await f();
      if (v !== undefined) return v;
      await sleep(100);
    }
    throw new Error(`never: ${what}`);
  }

  it("resumes the same check object after a restart, and the sibling deploys meanwhile", async () => {
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    const repo = await newTestRepo("waits-kill");
    await repo.commit({ "slow/cm.yaml": cm("slow", { v: "1" }), "fast/cm.yaml": cm("fast", { v: "1" }) }, "initial");
    const rev = await repo.head("main");
    const slow = uniqueName("slow").slice(0, 40).replace(/-+$/, "");
    const fast = uniqueName("fast").slice(0, 40).replace(/-+$/, "");
    const namespace = uniqueName("waits-ns");
    const stateNamespace = uniqueName("waits-state");
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }) });
    const dir = await tempDir("waits-kill");
    await writeFile(join(dir, "token"), env.gitToken);
    const configFile = join(dir, "plumber.yaml");
    const gate = { name: "gate", pipelineRun: { manifest: { apiVersion: "tekton.dev/v1", kind: "PipelineRun", metadata: { name: "ignored" }, spec: { pipelineRef: { name: "gate-tests" } } } } };
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [
          { name: slow, repo: "plumbing", branch: "main", path: "slow", cluster: "local", namespace, checks: { pre: [gate] } },
          { name: fast, repo: "plumbing", branch: "main", path: "fast", cluster: "local", namespace },
        ],
        state: { namespace: stateNamespace },
      }),
    );
    const args = ["--config", configFile, "--cache-dir", join(dir, "cache"), "run", "--metrics-addr", "127.0.0.1:0"];
    const store = new StateStore(kube, stateNamespace);
    const runsPath = `/apis/tekton.dev/v1/namespaces/${namespace}/pipelineruns`;
    const runs = async () => (await kube.request<{ items: { metadata: { name: string } }[] }>({ method: "GET", path: runsPath })).body.items.map((i) => i.metadata.name);
    const data = async (name: string) => (await kube.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${namespace}/configmaps/${name}`))?.data;

    const first = PlumberProcess.start(args, { PLUMBER_LOG_LEVEL: "debug" });
    running.push(first);
    const started = await until("the pre-check recorded", async () => parsePreChecks((await store.load(slow))?.preChecks)?.current);
    // The sibling on the same repo deploys, and deploys its next commit, while the pre-check runs.
    await until("fast applied", async () => ((await data("fast"))?.v === "1" ? true : undefined));
    await repo.commit({ "fast/cm.yaml": cm("fast", { v: "2" }) }, "fast v2");
    await until("fast v2 applied", async () => ((await data("fast"))?.v === "2" ? true : undefined));
    expect(await data("slow")).toBeUndefined();
    await first.kill();

    const run = checkObjectName(slow, "pre", "gate", rev);
    expect(await runs()).toEqual([run]);
    const second = PlumberProcess.start(args, { PLUMBER_LOG_LEVEL: "debug" });
    running.push(second);
    // Two looks by the new process at the pre-check it found in the state.
    const looks = () => second.lines.filter((x) => String(x.msg).includes("waits for pre-check gate")).length;
    for (let n = 1; n <= 2; n++) await second.waitFor(() => looks() >= n, 60_000, `look ${n} at the pre-check`);
    expect(await runs()).toEqual([run]);
    const resumed = parsePreChecks((await store.load(slow))?.preChecks);
    expect(resumed?.current).toEqual(started);
    expect(await data("slow")).toBeUndefined();

    await kube.request({
      method: "PATCH",
      path: `${runsPath}/${run}/status`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ status: { conditions: [{ type: "Succeeded", status: "True", reason: "Succeeded", message: "ok (test)" }] } }),
    });
    await until("slow applied", async () => ((await data("slow"))?.v === "1" ? true : undefined));
    expect(await runs()).toEqual([run]);
    // fast v2 moved main: the slow app's render is the same, so the run of the initial commit stood for the head.
    expect(await until("slow Ready", async () => {
      const s = await store.load(slow);
      return s?.phase === "Ready" ? s : undefined;
    })).toMatchObject({ phase: "Ready", revision: await repo.head("main") });
    await second.kill();
  });
});
