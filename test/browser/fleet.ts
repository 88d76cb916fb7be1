// The fleet the browser tests look at: six apps, each in its own repo on the real git server (a
// commit to one never gives another a new revision), deployed by `plumber run` (the dist/ build,
// a real process) into the real control plane, with its dashboard on a loopback port. Each test
// acts on its own app, so the tests pass in any order.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { controlObjectName } from "../../src/state/control.js";
import { stateObjectName } from "../../src/state/store.js";
import { PlumberProcess } from "../bed/plumber.js";
import type { TestRepo } from "../bed/testrepo.js";
import { approverAndViewer, type People } from "../bed/tokens.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

/**
 * What each app is for. Names are Tekton's (they are what the README screenshot shows); they
 * need only be unique in the file's state namespace.
 */
export const APPS = {
  /** Deployed and healthy. */
  ready: "pipeline",
  /** Gets a new commit while a page is open (live update). */
  live: "catalog",
  /** approval: manual; approved in the browser with an authorised token. */
  approve: "chains",
  /** approval: manual; an unauthorised token is refused. */
  refuse: "triggers",
  /** approval: manual; its pending plan (with a Secret) is reviewed, never approved. */
  review: "operator",
  /** Its manifest is invalid: every apply fails. Listed last in the config and last by name, so only "problems first" puts it first. */
  failing: "results",
} as const;
export type Role = keyof typeof APPS;

export const CLUSTER = "dogfooding";
export const RELEASE = "pipeline-nightly";
/** The Secret value in the review app's pending plan: no page may show it. */
export const SECRET_VALUE = "s3cr3t-do-not-show";

const configMap = (name: string, data: Record<string, string>) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });

/** The first commit of each app's repo: files and subject. */
function initialCommit(role: Role): [Record<string, string>, string] {
  const app = APPS[role];
  switch (role) {
    case "failing":
      // Not a valid object name: the apiserver refuses the apply (422) at every try.
      return [{ "config.yaml": configMap("Results_Config", { retention: "7d" }) }, "results: retention 7 days"];
    case "review":
      return [
        {
          "config.yaml": configMap("operator-config", { channel: "stable", replicas: "2" }),
          "secret.yaml": stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "operator-webhook" }, stringData: { token: SECRET_VALUE } }),
        },
        "operator: webhook token and stable channel",
      ];
    default:
      return [{ "config.yaml": configMap(`${app}-config`, { channel: "nightly" }) }, `${app}: nightly channel`];
  }
}

export interface Fleet {
  /** http://127.0.0.1:PORT of the dashboard. */
  url: string;
  admin: KubeClient;
  people: People;
  stateNamespace: string;
  /** Where the apps deploy. */
  namespace: string;
  repos: Record<Role, TestRepo>;
  /** Each app's first revision. */
  initial: Record<Role, string>;
  plumber: PlumberProcess;
  /** The app's control record's data (approvals, pins, retries); undefined when there is none. */
  control(role: Role): Promise<Record<string, string> | undefined>;
  /** The app's state record's data. */
  state(role: Role): Promise<Record<string, string> | undefined>;
  /** Waits until plumber's state record satisfies `pred` (the apps' cycles run every second). */
  until(role: Role, what: string, pred: (data: Record<string, string>) => boolean): Promise<Record<string, string>>;
  close(): Promise<void>;
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, tail = () => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${tail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startFleet(): Promise<Fleet> {
  const env = testEnv();
  const admin = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
  const namespace = uniqueName("dash-apps");
  const stateNamespace = uniqueName("dash-state");
  const peopleNamespace = uniqueName("dash-people");
  for (const name of [namespace, stateNamespace, peopleNamespace]) {
    await admin.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }) });
  }
  const roles = Object.keys(APPS) as Role[];
  const people = await approverAndViewer(
    admin,
    peopleNamespace,
    stateNamespace,
    roles.map((r) => APPS[r]),
  );
  // RBAC cannot limit `create` by name: as the README says, an admin creates each control record once.
  for (const r of roles) {
    await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/${stateNamespace}/configmaps`,
      body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: controlObjectName(APPS[r]) } }),
    });
  }

  const repos = {} as Record<Role, TestRepo>;
  const initial = {} as Record<Role, string>;
  for (const r of roles) {
    repos[r] = await newTestRepo(APPS[r]);
    const [files, subject] = initialCommit(r);
    initial[r] = await repos[r].commit(files, subject);
  }

  const dir = await tempDir("dash");
  await writeFile(join(dir, "token"), env.gitToken);
  const configFile = join(dir, "plumber.yaml");
  const manual = new Set<Role>(["approve", "refuse", "review"]);
  await writeFile(
    configFile,
    stringify({
      clusters: [{ name: CLUSTER, kubeconfig: env.kubeconfigPath }],
      repos: roles.map((r) => ({ name: APPS[r], url: env.gitUrl(repos[r].name), interval: "1s", auth: { tokenFile: "token" } })),
      apps: roles.map((r) => ({
        name: APPS[r],
        repo: APPS[r],
        branch: "main",
        path: ".",
        cluster: CLUSTER,
        namespace,
        ...(manual.has(r) ? { approval: "manual" } : {}),
      })),
      releases: [
        {
          name: RELEASE,
          schedule: "0 2 * * *",
          timezone: "Europe/Berlin",
          repo: APPS.ready,
          branch: "main",
          cluster: CLUSTER,
          namespace,
          template: { inline: { apiVersion: "tekton.dev/v1", kind: "TaskRun", spec: { taskRef: { name: "release" } } } },
          params: { versionTag: "$(plumber.versionTag)" },
        },
      ],
      state: { namespace: stateNamespace },
    }),
  );
  const plumber = PlumberProcess.start([
    "--config",
    configFile,
    "--cache-dir",
    join(dir, "cache"),
    "run",
    "--no-leader-elect",
    "--metrics-addr",
    "127.0.0.1:0",
    "--dashboard-listen",
    "127.0.0.1:0",
  ]);
  const listening = await plumber.waitFor((l) => /dashboard listening on http:\/\//.test(String(l.msg)) || typeof l.url === "string", 60_000, "dashboard listening");
  const url = typeof listening.url === "string" ? listening.url : (/(http:\/\/\S+)/.exec(String(listening.msg))?.[1] ?? "");

  const data = async (name: string) => (await admin.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNamespace}/configmaps/${name}`))?.data;
  const fleet: Fleet = {
    url: url.replace(/\/$/, ""),
    admin,
    people,
    stateNamespace,
    namespace,
    repos,
    initial,
    plumber,
    control: (r) => data(controlObjectName(APPS[r])),
    state: (r) => data(stateObjectName(APPS[r])),
    until: (r, what, pred) =>
      poll(
        `${APPS[r]}: ${what}`,
        async () => {
          const d = await fleet.state(r);
          return d && pred(d) ? d : undefined;
        },
        60_000,
        () => plumber.tail(),
      ),
    async close() {
      await plumber.kill();
      admin.close();
    },
  };
  // Every test starts from the fleet in its first state, as plumber recorded it and as the
  // dashboard (which reads the records every refresh) shows it.
  const first: Record<Role, string> = { ready: "Ready", live: "Ready", approve: "WaitingApproval", refuse: "WaitingApproval", review: "WaitingApproval", failing: "Failed" };
  await poll(
    "the dashboard's fleet in its first state",
    async () => {
      const res = await fetch(`${fleet.url}/api/fleet`);
      if (res.status !== 200) return undefined;
      const { rows } = (await res.json()) as { rows: Array<{ app: string; phase: string }> };
      const shown = new Map(rows.map((r) => [r.app, r.phase]));
      return roles.every((r) => shown.get(APPS[r]) === first[r]) ? true : undefined;
    },
    60_000,
    () => plumber.tail(),
  );
  return fleet;
}
