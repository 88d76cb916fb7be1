// plumber as its ServiceAccount, with the RBAC of manifests/ and nothing else, against the real
// apiserver (RBAC enforced): a token from the TokenRequest API in a kubeconfig, `plumber run` as a
// process with leader election. It does its job (deploy, state, Lease, Events, metrics); a kind
// the deploy RBAC does not grant fails the revision with a clear error and writes nothing of it.
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { findRepoRoot } from "../bed/paths.js";
import type { TestRepo } from "../bed/testrepo.js";
import { PlumberProcess } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

/** A manifest read as plain data, probed field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the manifests are the subject; a full type of each would only restate them
type Loose = any;

const execFileP = promisify(execFile);

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** manifests/ moved to namespaces `ns` and `stateNs`, cluster-scoped names suffixed so runs do not collide. */
async function rewrittenManifests(ns: string, stateNs: string, out: string): Promise<void> {
  const moved = (n: string): string => (n === "plumber" ? ns : n === "plumber-state" ? stateNs : n);
  const dir = join(findRepoRoot(), "manifests");
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".yaml"))) {
    const docs = parseAllDocuments(await readFile(join(dir, file), "utf8"))
      .map((d) => d.toJS() as Loose)
      .filter(Boolean)
      .map((o) => {
        if (o.kind === "Namespace") o.metadata.name = moved(o.metadata.name);
        if (o.metadata.namespace) o.metadata.namespace = moved(o.metadata.namespace);
        if (o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding") o.metadata.name = `${o.metadata.name}-${ns}`;
        if (o.kind === "ClusterRoleBinding") o.roleRef.name = `${o.roleRef.name}-${ns}`;
        for (const s of o.subjects ?? []) if (s.namespace) s.namespace = moved(s.namespace);
        for (const r of o.rules ?? []) if (r.resources?.includes("namespaces")) r.resourceNames = r.resourceNames.map(moved);
        return o;
      });
    await writeFile(join(out, file), docs.map((d) => stringify(d)).join("---\n"));
  }
}

describe("plumber as its ServiceAccount, RBAC enforced", () => {
  const env = testEnv();
  const ns = uniqueName("plumber-sa");
  const stateNs = uniqueName("plumber-sa-state");
  const appNs = uniqueName("sa-apps");
  const app = uniqueName("sa-app").slice(0, 30).replace(/-+$/, "");
  let admin: KubeClient;
  let asSa: KubeClient;
  let repo: TestRepo;
  let proc: PlumberProcess;
  let rev1: string;

  const state = () => admin.getOptional<{ data?: Record<string, string> }>(`/api/v1/namespaces/${stateNs}/configmaps/${stateObjectName(app)}`);
  const lease = () => admin.getOptional<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/plumber`);
  const events = async () =>
    (await admin.request<{ items: Array<{ reason: string; type: string; note: string; regarding: { name: string } }> }>({ method: "GET", path: `/apis/events.k8s.io/v1/namespaces/${stateNs}/events` })).body.items;

  beforeAll(async () => {
    admin = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    const work = await tempDir("sa");
    const mdir = join(work, "manifests");
    await mkdir(mdir);
    await rewrittenManifests(ns, stateNs, mdir);
    await execFileP(join(env.binDir, "kubectl"), [`--kubeconfig=${env.kubeconfigPath}`, "apply", "--server-side", "-f", join(mdir, "00-namespace.yaml")]);
    await execFileP(join(env.binDir, "kubectl"), [`--kubeconfig=${env.kubeconfigPath}`, "apply", "--server-side", "-f", mdir]);
    await admin.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: appNs } }) });

    // A token for the ServiceAccount from the TokenRequest API, in a kubeconfig of its own.
    const tr = await admin.request<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/serviceaccounts/plumber/token`,
      body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } }),
    });
    const kubeconfig = join(work, "sa.kubeconfig");
    await writeFile(
      kubeconfig,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "test", cluster: { server: env.kubeServer, "certificate-authority-data": Buffer.from(env.kubeCaPem).toString("base64") } }],
        users: [{ name: "plumber", user: { token: tr.body.status.token } }],
        contexts: [{ name: "plumber", context: { cluster: "test", user: "plumber" } }],
        "current-context": "plumber",
      }),
    );
    asSa = await KubeClient.create(loadKubeConfig({ kubeconfig }));

    repo = await newTestRepo("sa");
    rev1 = await repo.commit(
      {
        "settings.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: { channel: "nightly" } }),
        "build.yaml": stringify({ apiVersion: "tekton.dev/v1", kind: "Task", metadata: { name: "build" }, spec: { steps: [{ name: "run", image: "alpine:3.20", script: "echo hi" }] } }),
      },
      "initial",
    );
    await writeFile(join(work, "token"), env.gitToken);
    const configFile = join(work, "plumber.yaml");
    // No kubeconfig in the config: plumber uses $KUBECONFIG, here the ServiceAccount's.
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local" }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: appNs }],
        state: { namespace: stateNs },
      }),
    );
    proc = PlumberProcess.start(
      ["--config", configFile, "--cache-dir", join(work, "cache"), "run", "--metrics-addr", "127.0.0.1:0", "--leader-elect", "--lease-namespace", ns, "--shutdown-grace", "5s"],
      { KUBECONFIG: kubeconfig },
    );
  });

  afterAll(async () => {
    await proc?.kill();
    admin?.close();
    asSa?.close();
  });

  it("deploys, records state, holds the Lease, emits Events and is ready", async () => {
    const st = await until("applied", async () => (await state())?.data?.revision === rev1 && (await state()));
    expect(st.data?.lastResult).toBe("Applied");
    expect(await admin.getOptional(`/api/v1/namespaces/${appNs}/configmaps/settings`)).toBeTruthy();
    expect(await admin.getOptional(`/apis/tekton.dev/v1/namespaces/${appNs}/tasks/build`)).toBeTruthy();
    const leading = await proc.waitFor((l) => l.msg === "leading");
    expect((await lease())?.spec.holderIdentity).toBe(leading.identity);
    expect((await fetch(`${await proc.baseUrl()}/readyz`)).status).toBe(200);
    expect((await proc.scrape()).value("plumber_leader")).toBe(1);
    await until("Deployed event", async () => (await events()).some((e) => e.reason === "Deployed" && e.regarding.name === stateObjectName(app)));
    // Nothing was refused along the way.
    expect(proc.lines.filter((l) => /forbidden/i.test(JSON.stringify(l)))).toEqual([]);
  });

  it("holds no more than it needs", async () => {
    const can = async (attrs: Record<string, string>) =>
      (
        await asSa.request<{ status: { allowed: boolean } }>({
          method: "POST",
          path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
          body: JSON.stringify({ apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: { resourceAttributes: attrs } }),
        })
      ).body.status.allowed;
    expect(await can({ verb: "patch", resource: "configmaps", namespace: stateNs })).toBe(true);
    // The chunks of a replaced state generation (src/state/chunks.ts) are deleted.
    expect(await can({ verb: "delete", resource: "configmaps", namespace: stateNs })).toBe(true);
    expect(await can({ verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "plumber" })).toBe(true);
    expect(await can({ verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "someone-else" })).toBe(false);
    expect(await can({ verb: "get", resource: "secrets", namespace: stateNs })).toBe(false);
    expect(await can({ verb: "get", resource: "secrets", namespace: stateNs, name: "plumber-hash-key" })).toBe(true);
    expect(await can({ verb: "create", resource: "secrets", namespace: appNs })).toBe(false);
    expect(await can({ verb: "delete", resource: "namespaces", name: appNs })).toBe(false);
    expect(await can({ verb: "get", resource: "namespaces", name: appNs })).toBe(false);
    expect(await can({ verb: "create", resource: "pods", namespace: appNs })).toBe(false);
    expect(await can({ verb: "create", group: "apps", resource: "deployments", namespace: appNs })).toBe(false);
  });

  it("a kind it may not deploy fails the revision with a clear error and applies nothing of it", async () => {
    const rev2 = await repo.commit(
      {
        "settings.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: { channel: "stable" } }),
        "creds.yaml": stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "creds" }, stringData: { token: "x" } }),
      },
      "add a secret",
    );
    const st = await until("failed", async () => {
      const s = await state();
      return s?.data?.attemptedRevision === rev2 && s.data.lastResult === "Failed" && s;
    });
    expect(st.data?.revision).toBe(rev1);
    expect(st.data?.message).toMatch(/secrets.* is forbidden: User "system:serviceaccount:[^"]+:plumber" cannot (list|patch) resource "secrets"/);
    // Nothing of the revision went out: the ConfigMap keeps its old data, no Secret.
    expect((await admin.getOptional<{ data: Record<string, string> }>(`/api/v1/namespaces/${appNs}/configmaps/settings`))?.data.channel).toBe("nightly");
    expect(await admin.getOptional(`/api/v1/namespaces/${appNs}/secrets/creds`)).toBeUndefined();
    const logged = await proc.waitFor((l) => l.msg === "missing permission");
    expect(String(logged.err)).toMatch(/lacks this permission: grant it .*30-deploy-rbac\.yaml/);
    await until("failure event", async () => (await events()).some((e) => e.reason === "ReconcileFailed" && e.type === "Warning" && /forbidden.*lacks this permission/s.test(e.note)));
  });

  it("SIGHUP re-reads and re-validates the config; the running one stays when it is fine", async () => {
    proc.signal("SIGHUP");
    const l = await proc.waitFor((x) => x.msg === "config reloaded");
    expect(l.trigger).toBe("signal");
    expect((await proc.scrape()).value("plumber_config_reloads_total", { result: "applied" })).toBe(1);
    expect(proc.running).toBe(true);
  });

  it("stops on SIGTERM and gives the Lease back", async () => {
    proc.signal("SIGTERM");
    const { code } = await proc.exited;
    expect(code).toBe(0);
    // It ended because nothing was left running, not by the forced exit that follows the grace.
    expect(proc.lines.some((l) => l.msg === "handles still open after shutdown: forcing exit")).toBe(false);
    expect((await lease())?.spec.holderIdentity).toBe("");
  });
});
