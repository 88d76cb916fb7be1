// A multi-app harness for the fleet tests: one repo on the real git server, several apps (each
// with its own namespace) on the real control plane, one runtime and one poller.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import type { CycleResult } from "../../src/reconcile/app.js";
import type { Clock } from "../../src/reconcile/clock.js";
import type { Observer } from "../../src/observe/events.js";
import { RepoPoller, type RoundOptions } from "../../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../../src/reconcile/runtime.js";
import type { TestRepo } from "../bed/testrepo.js";
import { StateStore, type AppState } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

export interface Fleet {
  repo: TestRepo;
  /** Logical app key → real app name and namespace. */
  apps: Record<string, { name: string; namespace: string }>;
  kube: KubeClient;
  rt: Runtime;
  /** The repo's poller (its backoff reads the injected clock, when there is one). */
  readonly poller: RepoPoller;
  stateNamespace: string;
  configFile: string;
  /** One poll (a round by hand unless `round` says otherwise); results by logical app key. */
  cycle(round?: RoundOptions): Promise<Record<string, CycleResult>>;
  /** A process restart: a new runtime and poller from the same config, knowing only what the cluster holds. */
  restart(): Promise<void>;
  state(key: string): Promise<AppState | undefined>;
  close(): void;
}

/** `apps`: logical key → extra app fields; `dependsOn` entries may name logical keys. */
export async function fleet(files: Record<string, string>, apps: Record<string, Record<string, unknown>>, top: Record<string, unknown> = {}, opts: { clock?: Clock; observer?: Observer } = {}): Promise<Fleet> {
  const env = testEnv();
  const repo = await newTestRepo("fleet");
  await repo.commit(files, "initial");
  const dir = await tempDir("fleet");
  await writeFile(join(dir, "token"), env.gitToken);
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
  const names: Fleet["apps"] = {};
  for (const key of Object.keys(apps)) {
    names[key] = { name: uniqueName(key).slice(0, 40).replace(/-+$/, ""), namespace: uniqueName(`ns-${key}`) };
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: names[key]!.namespace } }) });
  }
  const stateNamespace = uniqueName("state");
  const configFile = join(dir, "plumber.yaml");
  const real = (k: string) => names[k]?.name ?? k;
  await writeFile(
    configFile,
    stringify({
      clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
      repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
      apps: Object.entries(apps).map(([key, extra]) => {
        const out: Record<string, unknown> = { name: real(key), repo: "plumbing", path: ".", cluster: "local", namespace: names[key]!.namespace, ...extra };
        if (!("branch" in out) && !("branchPattern" in out)) out.branch = "main";
        if (Array.isArray(out.dependsOn)) out.dependsOn = (out.dependsOn as string[]).map(real);
        return out;
      }),
      state: { namespace: stateNamespace },
      ...top,
    }),
  );
  const build = async (): Promise<{ rt: Runtime; poller: RepoPoller }> => {
    const rt = await buildRuntime(await loadConfig(configFile), { log: silentLogger(), cacheDir: join(dir, "cache"), ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.observer ? { observer: opts.observer } : {}) });
    const conn = rt.repos.get("plumbing");
    if (!conn) throw new Error("no repo connection");
    const now = opts.clock ? { now: () => opts.clock!.now().getTime() } : {};
    return { rt, poller: new RepoPoller(conn, rt.apps, silentLogger(), now) };
  };
  let { rt, poller } = await build();
  const store = new StateStore(kube, stateNamespace);
  return {
    repo,
    apps: names,
    kube,
    get rt() {
      return rt;
    },
    get poller() {
      return poller;
    },
    stateNamespace,
    configFile,
    async cycle(round) {
      const res = await poller.cycle(undefined, round);
      if (res.error) throw new Error(`poll failed: ${res.error}`);
      const out: Record<string, CycleResult> = {};
      for (const [key, n] of Object.entries(names)) {
        const r = res.apps.find((a) => a.app === n.name);
        if (r) out[key] = r.result;
      }
      return out;
    },
    async restart() {
      rt.close();
      ({ rt, poller } = await build());
    },
    state: (key) => store.load(real(key)),
    close() {
      rt.close();
      kube.close();
    },
  };
}

/** A clock the test moves by hand. */
export function handClock(iso: string): Clock & { advance(ms: number): void } {
  let t = new Date(iso).getTime();
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
}

/** The PipelineRuns of an app's namespace (its checks). */
export const runs = (f: Fleet, key: string): string => `/apis/tekton.dev/v1/namespaces/${f.apps[key]!.namespace}/pipelineruns`;

/** Plays Tekton: marks a check's PipelineRun Succeeded. */
export async function finish(kube: KubeClient, path: string): Promise<void> {
  await kube.request({
    method: "PATCH",
    path: `${path}/status`,
    contentType: "application/merge-patch+json",
    body: JSON.stringify({ status: { conditions: [{ type: "Succeeded", status: "True", reason: "Succeeded", message: "ok (test)" }] } }),
  });
}

/** The names of the check runs in an app's namespace, sorted. */
export async function runsOf(f: Fleet, key: string): Promise<string[]> {
  const list = await f.kube.request<{ items: { metadata: { name: string } }[] }>({ method: "GET", path: runs(f, key) });
  return list.body.items.map((i) => i.metadata.name).sort();
}
