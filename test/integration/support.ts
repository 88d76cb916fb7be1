// Shared wiring for integration tests: a repo on the real git server, a config pointing plumber
// at it and at the real control plane, and the runtime built from that config.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { RepoPoller, type PollResult } from "../../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../../src/reconcile/runtime.js";
import type { TestRepo } from "../bed/testrepo.js";
import type { CycleResult } from "../../src/reconcile/app.js";
import type { Clock } from "../../src/reconcile/clock.js";
import type { Observer } from "../../src/observe/events.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";
import { sleep } from "../../src/util/pool.js";

export interface AppOptions {
  prune?: boolean;
  allowEmpty?: boolean;
  path?: string;
  /** More app fields (checks, health, rollback, approval), as written in the config file. */
  app?: Record<string, unknown>;
  /** More cluster fields (expect). */
  cluster?: Record<string, unknown>;
  notifications?: Record<string, unknown>[];
  /** More top-level config fields (kustomize, …). */
  top?: Record<string, unknown>;
  /** The repo's poll interval (default "1s"). */
  interval?: string;
  /** The reconcilers' clock (the one given to harness(); restart() and reconfigure() keep it). */
  clock?: Clock;
  /** Told what the runtime's apps, engines and pollers do (kept across restarts, like clock). */
  observer?: Observer;
}

export interface Harness {
  repo: TestRepo;
  app: string;
  namespace: string;
  stateNamespace: string;
  configFile: string;
  cacheDir: string;
  rt: Runtime;
  kube: KubeClient;
  /** One poll of the repo; returns the app's result. */
  cycle(signal?: AbortSignal): Promise<CycleResult>;
  /** The directory of the config file (for secret files the config names). */
  dir: string;
  /** Counters of the runtime's own HTTP layers, reset on read. */
  counts(): { git: number; api: number; writes: number; dryRuns: number; lists: number };
  /** A new runtime from the same config, as a restarted plumber would build. */
  restart(): Promise<void>;
  /** Rewrites the config with other app options and restarts. */
  reconfigure(opts: AppOptions): Promise<void>;
  close(): void;
}

export async function harness(files: Record<string, string>, opts: AppOptions = {}): Promise<Harness> {
  const env = testEnv();
  const repo = await newTestRepo("app");
  await repo.commit(files, "initial");
  const app = uniqueName("app").slice(0, 40).replace(/-+$/, "");
  const namespace = uniqueName("ns");
  const stateNamespace = uniqueName("state");
  const dir = await tempDir("it");
  const configFile = join(dir, "plumber.yaml");
  const cacheDir = join(dir, "cache");
  await writeFile(join(dir, "token"), env.gitToken);
  const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
  await kube.request({
    method: "POST",
    path: "/api/v1/namespaces",
    body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }),
  });

  const writeConfig = async (o: AppOptions): Promise<void> => {
    const config = {
      clusters: [{ name: "local", kubeconfig: env.kubeconfigPath, ...(o.cluster ?? {}) }],
      repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: opts.interval ?? "1s", auth: { tokenFile: "token" } }],
      apps: [
        {
          name: app,
          repo: "plumbing",
          branch: "main",
          path: o.path ?? ".",
          cluster: "local",
          namespace,
          ...(o.prune === undefined ? {} : { prune: o.prune }),
          ...(o.allowEmpty === undefined ? {} : { allowEmpty: o.allowEmpty }),
          ...(o.app ?? {}),
        },
      ],
      state: { namespace: stateNamespace },
      ...(o.notifications ? { notifications: o.notifications } : {}),
      ...(o.top ?? {}),
    };
    await writeFile(configFile, stringify(config));
  };

  await writeConfig(opts);
  let rt = await buildRuntime(await loadConfig(configFile), { log: silentLogger(), cacheDir, clock: opts.clock, observer: opts.observer });
  let poller = newPoller(rt);
  let last = { git: 0, api: 0, writes: 0, dryRuns: 0, lists: 0 };
  const raw = () => {
    const s = (rt.clusters.get("local") as NonNullable<ReturnType<typeof rt.clusters.get>>).client.stats;
    return { git: rt.repos.get("plumbing")?.requests.total ?? 0, api: s.total, writes: s.writes, dryRuns: s.dryRuns, lists: s.byVerb.list };
  };
  const h: Harness = {
    repo,
    app,
    namespace,
    stateNamespace,
    configFile,
    cacheDir,
    get rt() {
      return rt;
    },
    kube,
    dir,
    async cycle(signal?: AbortSignal) {
      const res: PollResult = await poller.cycle(signal);
      if (res.error) throw new Error(`poll failed: ${res.error}`);
      const mine = res.apps.find((a) => a.app === app);
      if (!mine) throw new Error(signal?.aborted ? "aborted" : "app missing from poll result");
      return mine.result;
    },
    counts() {
      const now = raw();
      const d = { git: now.git - last.git, api: now.api - last.api, writes: now.writes - last.writes, dryRuns: now.dryRuns - last.dryRuns, lists: now.lists - last.lists };
      last = now;
      return d;
    },
    async restart() {
      rt.close();
      rt = await buildRuntime(await loadConfig(configFile), { log: silentLogger(), cacheDir, clock: opts.clock, observer: opts.observer });
      poller = newPoller(rt);
      last = raw();
    },
    async reconfigure(o) {
      await writeConfig(o);
      await h.restart();
    },
    close() {
      rt.close();
      kube.close();
    },
  };
  return h;
}

function newPoller(rt: Runtime): RepoPoller {
  const conn = rt.repos.get("plumbing");
  if (!conn) throw new Error("no repo connection");
  return new RepoPoller(conn, rt.apps, silentLogger());
}

export function configMap(name: string, data: Record<string, string>, namespace?: string): string {
  return stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(namespace ? { namespace } : {}) }, data });
}

export function task(name: string, image: string): string {
  return stringify({
    apiVersion: "tekton.dev/v1",
    kind: "Task",
    metadata: { name },
    spec: { steps: [{ name: "run", image, script: "echo hello" }] },
  });
}

// Tests read any field of a live object; callers that care pass T.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getObject<T = Record<string, any>>(kube: KubeClient, path: string): Promise<T | undefined> {
  return kube.getOptional<T>(path);
}

/** Plays the Deployment controller: the current generation rolled out and available. */
export async function markDeploymentReady(kube: KubeClient, path: string): Promise<void> {
  let d: { metadata: { generation?: number } } | undefined;
  for (let i = 0; i < 300 && !(d = await kube.getOptional(path)); i++) await sleep(50);
  if (!d) throw new Error(`${path} never appeared`);
  await kube.request({
    method: "PATCH",
    path: `${path}/status`,
    contentType: "application/merge-patch+json",
    body: JSON.stringify({
      status: {
        observedGeneration: d.metadata.generation,
        replicas: 1,
        updatedReplicas: 1,
        readyReplicas: 1,
        availableReplicas: 1,
        conditions: [{ type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "ok" }],
      },
    }),
  });
}

/** A post- or pre-check that runs a smoke-tests PipelineRun at the revision (the tests play Tekton by writing its status). */
export const smokeCheck = {
  name: "smoke",
  timeout: "60s",
  pipelineRun: {
    manifest: {
      apiVersion: "tekton.dev/v1",
      kind: "PipelineRun",
      metadata: { name: "ignored" },
      spec: { pipelineRef: { name: "smoke-tests" }, params: [{ name: "revision", value: "$(plumber.revision)" }] },
    },
  },
};
