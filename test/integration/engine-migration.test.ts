// Real-cluster migration cases for the engine as a library: objects kubectl applied client-side,
// immutable fields, and the per-object annotations (prune, ssa, force).
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { PlanError } from "../../src/engine/engine.js";
import type { KubeObject } from "../../src/types.js";
import { tempDir, testEnv } from "../setup/env.js";
import { bed, cm, cmPath, m, type Bed } from "./engine-support.js";

const execFileP = promisify(execFile);
const open: Bed[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
});

async function newBed() {
  const b = await bed();
  open.push(b);
  return b;
}

/** The real `kubectl apply` (client-side: the default), as the cluster was managed before plumber. */
async function kubectlApply(objects: Record<string, unknown>[]): Promise<void> {
  const env = testEnv();
  const file = join(await tempDir("kubectl"), "manifests.yaml");
  await writeFile(file, objects.map((o) => stringify(o)).join("---\n"));
  await execFileP(join(env.binDir, "kubectl"), ["--kubeconfig", env.kubeconfigPath, "apply", "-f", file]);
}

const managers = (o: KubeObject | undefined) => ((o?.metadata.managedFields ?? []) as { manager: string; operation: string }[]).map((e) => `${e.manager}/${e.operation}`).sort();
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

describe("taking over from kubectl apply", () => {
  it("takes over client-side-applied fields on first apply, drops last-applied, and a field later removed from the manifest is gone", async () => {
    const b = await newBed();
    const ns = b.namespace;
    const deployment = (extraEnv: boolean, labels: Record<string, string>) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "web", image: "nginx:1.27", env: [{ name: "A", value: "1" }, ...(extraEnv ? [{ name: "OLD", value: "x" }] : [])] }] },
        },
      },
    });
    const config = (data: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg", namespace: ns, labels: { team: "ci" } }, data });
    await kubectlApply([config({ a: "1", b: "2" }), deployment(true, { team: "ci", tier: "web" })]);
    const before = await b.get<KubeObject>(cmPath(ns, "cfg"));
    expect(managers(before)).toEqual(["kubectl-client-side-apply/Update"]);
    expect(before?.metadata.annotations?.[LAST_APPLIED]).toBeDefined();

    const engine = b.engine();
    // The repo holds what kubectl applied; the plan says it will take over.
    const first = [m(config({ a: "1", b: "2" })), m(deployment(true, { team: "ci", tier: "web" }))];
    const plan = await engine.plan(b.req(first));
    expect(plan.objects.map((p) => p.note ?? "")).toEqual(plan.objects.map(() => expect.stringContaining("took over fields from kubectl-client-side-apply")));
    const out = await engine.sync(b.req(first));
    const notes = out.changeSet.entries.map((e) => e.notes?.join("; ") ?? "");
    expect(notes).toEqual([
      `took over fields from kubectl-client-side-apply; dropped ${LAST_APPLIED}`,
      `took over fields from kubectl-client-side-apply; dropped ${LAST_APPLIED}`,
    ]);
    const taken = await b.get<KubeObject>(cmPath(ns, "cfg"));
    expect(managers(taken)).toEqual(["plumber/Apply"]);
    expect(taken?.metadata.annotations?.[LAST_APPLIED]).toBeUndefined();

    // git drops a data key, a label and an env var: all gone from the cluster.
    const second = [m(config({ a: "1" })), m(deployment(false, { team: "ci" }))];
    const out2 = await engine.sync(b.req(second, out.inventory));
    expect(out2.changeSet.summary()).toMatchObject({ configured: 2, failed: 0 });
    expect((await b.get<KubeObject>(cmPath(ns, "cfg")))?.data).toEqual({ a: "1" });
    const dep = await b.get<KubeObject & { spec: { template: { spec: { containers: { env: unknown[] }[] } } } }>(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
    expect(dep?.metadata.labels).toEqual(expect.not.objectContaining({ tier: "web" }));
    expect(dep?.spec.template.spec.containers[0]?.env).toEqual([{ name: "A", value: "1" }]);
  });

  it("when git already differs from what kubectl applied, the first plan's diff shows exactly what the takeover removes", async () => {
    const b = await newBed();
    const ns = b.namespace;
    const deployment = (env: { name: string; value: string }[], labels: Record<string, string>) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: ns, labels },
      spec: { selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "nginx:1.27", env }] } } },
    });
    await kubectlApply([
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg", namespace: ns }, data: { a: "1", b: "2" } },
      deployment([{ name: "A", value: "1" }, { name: "OLD", value: "x" }], { team: "ci", tier: "web" }),
    ]);
    const repo = [
      m({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg", namespace: ns }, data: { a: "1" } }),
      m(deployment([{ name: "A", value: "1" }], { team: "ci" })),
    ];
    const engine = b.engine();
    const plan = await engine.plan(b.req(repo));
    const changed = (d: string) => d.split("\n").filter((l) => /^[-+][^-+]/.test(l));
    const cfg = plan.objects.find((p) => p.resource.id.kind === "ConfigMap")!;
    const dep = plan.objects.find((p) => p.resource.id.kind === "Deployment")!;
    const { diffObject } = await import("../../src/engine/diff.js");
    expect(cfg.merged?.data).toEqual({ a: "1" });
    expect(cfg.merged?.metadata.annotations?.[LAST_APPLIED]).toBeUndefined();
    expect(changed(diffObject("cfg", cfg.live, cfg.merged))).toContain('-  b: "2"');
    const depDiff = changed(diffObject("web", dep.live, dep.merged));
    expect(depDiff.filter((l) => !l.startsWith("-      {"))).toEqual([
      "-  annotations:",
      `-    ${LAST_APPLIED}: |`,
      "+    app.kubernetes.io/managed-by: plumber",
      `+    plumber.dev/app: ${b.owner}`,
      "-    tier: web",
      "-            - name: OLD",
      "-              value: x",
    ]);
    // Fields kubectl "owned" only because the server defaulted them at create are defaulted again:
    // not shown as removed.
    expect(depDiff.filter((l) => /progressDeadlineSeconds|revisionHistoryLimit|terminationMessage|dnsPolicy|schedulerName|strategy|imagePullPolicy|replicas|restartPolicy/.test(l))).toEqual([]);
    expect(dep.merged?.spec).toMatchObject({ replicas: 1, progressDeadlineSeconds: 600 });

    await engine.sync(b.req(repo));
    expect((await b.get<KubeObject>(cmPath(ns, "cfg")))?.data).toEqual({ a: "1" });
    const live = await b.get<KubeObject & { spec: { template: { spec: { containers: { env: unknown[] }[] } } } }>(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
    expect(live?.metadata.labels?.tier).toBeUndefined();
    expect(live?.spec.template.spec.containers[0]?.env).toEqual([{ name: "A", value: "1" }]);
    // The plan foresaw the applied object: same fields plumber manages, same values.
    expect(engine.fingerprint(live as KubeObject)).toBe(engine.fingerprint({ ...(dep.merged as KubeObject), metadata: { ...dep.merged!.metadata, managedFields: live?.metadata.managedFields } }));
  });

  it("without takeover (the old behaviour) the removed field would stay: kubectl's own entry keeps it", async () => {
    // The control case: a field owned by both kubectl-client-side-apply and another applier is
    // not removed when only the other applier drops it. This is what plumber used to leave behind.
    const b = await newBed();
    await kubectlApply([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: b.namespace }, data: { a: "1", b: "2" } }]);
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "c"), query: { fieldManager: "other", force: "true" }, contentType: "application/apply-patch+yaml", body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "1", b: "2" } }) });
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "c"), query: { fieldManager: "other", force: "true" }, contentType: "application/apply-patch+yaml", body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "1" } }) });
    expect((await b.get<KubeObject>(cmPath(b.namespace, "c")))?.data).toEqual({ a: "1", b: "2" });
  });
});

describe("immutable fields", () => {
  it("names each immutable field in the error, and plumber.dev/force: enabled deletes and recreates (plan first, without writes)", async () => {
    const b = await newBed();
    const ns = b.namespace;
    const role = (name: string) => m({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] });
    const binding = (roleName: string, annotations?: Record<string, string>) =>
      m({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "rb", ...(annotations ? { annotations } : {}) }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: roleName }, subjects: [{ kind: "ServiceAccount", name: "default", namespace: ns }] }, "rbac/binding.yaml");
    const job = (image: string) => m({ apiVersion: "batch/v1", kind: "Job", metadata: { name: "migrate" }, spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "m", image }] } } } }, "job.yaml");
    const deploy = (app: string) =>
      m({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: { selector: { matchLabels: { app } }, template: { metadata: { labels: { app } }, spec: { containers: [{ name: "c", image: "nginx" }] } } } }, "deploy.yaml");
    const service = (clusterIP?: string) => m({ apiVersion: "v1", kind: "Service", metadata: { name: "s" }, spec: { ports: [{ port: 80 }], ...(clusterIP ? { clusterIP } : {}) } }, "svc.yaml");

    const engine = b.engine();
    const base = await engine.sync(b.req([role("r1"), role("r2"), binding("r1"), job("alpine:3.19"), deploy("a"), service()]));
    const svc = await b.get<KubeObject & { spec: { clusterIP: string } }>(`/api/v1/namespaces/${ns}/services/s`);
    const ip = svc!.spec.clusterIP.split(".").map(Number);
    ip[3] = ((ip[3] as number) + 1) % 250 || 2;
    const otherIp = ip.join(".");

    b.sent();
    const err = await engine.sync(b.req([role("r1"), role("r2"), binding("r2"), job("alpine:3.20"), deploy("b"), service(otherIp)], base.inventory)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/rbac\/binding\.yaml:\d+: RoleBinding\/\S+\/rb: immutable field roleRef cannot be changed in place; set the annotation plumber\.dev\/force: enabled/);
    expect(msg).toMatch(/job\.yaml:\d+: Job\/\S+\/migrate: immutable field spec\.template/);
    expect(msg).toMatch(/deploy\.yaml:\d+: Deployment\/\S+\/d: immutable field spec\.selector/);
    expect(msg).toMatch(/svc\.yaml:\d+: Service\/\S+\/s: immutable field spec\.clusterIPs?/);
    expect(b.sent().filter((r) => r.method !== "GET" && r.query?.dryRun !== "All")).toEqual([]);

    const uid = (await b.get<KubeObject>(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/rb`))?.metadata.uid;
    const forced = [role("r1"), role("r2"), binding("r2", { "plumber.dev/force": "enabled" }), job("alpine:3.19"), deploy("a"), service()];
    b.sent();
    const plan = await engine.plan(b.req(forced, base.inventory));
    expect(b.sent().filter((r) => r.method !== "GET" && r.query?.dryRun !== "All")).toEqual([]);
    const planned = plan.objects.find((p) => p.resource.id.kind === "RoleBinding");
    expect(planned).toMatchObject({ action: "configured", recreate: true });
    expect((planned?.merged as { roleRef?: { name?: string } }).roleRef?.name).toBe("r2");
    expect(planned?.merged?.metadata.name).toBe("rb");
    expect((await b.get<KubeObject>(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/rb`))?.metadata.uid).toBe(uid);

    const out = await engine.sync(b.req(forced, base.inventory));
    expect(out.changeSet.entries.find((e) => e.subject === `RoleBinding/${ns}/rb`)).toMatchObject({ action: "recreated" });
    expect(out.changeSet.summary()).toMatchObject({ recreated: 1, failed: 0 });
    const after = await b.get<KubeObject & { roleRef: { name: string } }>(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/rb`);
    expect(after?.roleRef.name).toBe("r2");
    expect(after?.metadata.uid).not.toBe(uid);
    // Recorded like any apply: the next sync finds it unchanged.
    const again = await engine.sync(b.req(forced, out.inventory));
    expect(again.changeSet.summary()).toMatchObject({ unchanged: 6 });
  });
});

describe("per-object annotations", () => {
  it("plumber.dev/prune: disabled keeps an object that left the repo and drops it from the inventory", async () => {
    const b = await newBed();
    const engine = b.engine();
    const first = await engine.sync(b.req([cm("keep", { v: "1" }, { annotations: { "plumber.dev/prune": "disabled" } }), cm("go", { v: "1" })]));
    const plan = await engine.plan(b.req([cm("other", { v: "1" })], first.inventory));
    expect(plan.prune.map((p) => p.subject)).toEqual([`ConfigMap/${b.namespace}/go`]);
    const out = await engine.sync(b.req([cm("other", { v: "1" })], first.inventory));
    expect(out.changeSet.entries.find((e) => e.subject.endsWith("/keep"))).toMatchObject({ action: "skipped", message: expect.stringContaining("plumber.dev/prune: disabled") });
    expect(await b.get(cmPath(b.namespace, "keep"))).toBeDefined();
    expect(await b.get(cmPath(b.namespace, "go"))).toBeUndefined();
    expect(out.inventory.map((e) => e.key)).toEqual([`/ConfigMap/${b.namespace}/other`]);
  });

  it("plumber.dev/ssa: IfNotPresent creates a missing object and never updates it", async () => {
    const b = await newBed();
    const engine = b.engine();
    const ann = { "plumber.dev/ssa": "IfNotPresent" };
    const first = await engine.sync(b.req([cm("seed", { v: "1" }, { annotations: ann })]));
    expect(first.changeSet.summary()).toMatchObject({ created: 1 });
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "seed"), query: { fieldManager: "operator" }, contentType: "application/merge-patch+json", body: JSON.stringify({ data: { v: "operator's" } }) });
    b.sent();
    const out = await engine.sync(b.req([cm("seed", { v: "2" }, { annotations: ann })], first.inventory));
    expect(b.sent().filter((r) => r.method === "PATCH")).toEqual([]);
    expect(out.changeSet.entries[0]).toMatchObject({ action: "skipped", message: "plumber.dev/ssa: IfNotPresent: exists, not updated" });
    expect((await b.get<KubeObject>(cmPath(b.namespace, "seed")))?.data).toEqual({ v: "operator's" });
    expect(out.inventory.map((e) => e.key)).toEqual([`/ConfigMap/${b.namespace}/seed`]);
    // Still plumber's to prune when it leaves the repo.
    const gone = await engine.sync(b.req([], out.inventory, { allowEmpty: true }));
    expect(gone.changeSet.count("pruned")).toBe(1);
  });

  it("plumber.dev/ssa: Ignore leaves an object alone, in the manifest or set on the live object", async () => {
    const b = await newBed();
    const engine = b.engine();
    const first = await engine.sync(b.req([cm("held", { v: "1" }), cm("never", { v: "1" }, { annotations: { "plumber.dev/ssa": "Ignore" } })]));
    expect(await b.get(cmPath(b.namespace, "never"))).toBeUndefined();
    expect(first.inventory.map((e) => e.key)).toEqual([`/ConfigMap/${b.namespace}/held`]);
    // A person holds "held" by annotating it in the cluster: plumber neither updates nor prunes it.
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "held"), query: { fieldManager: "person" }, contentType: "application/merge-patch+json", body: JSON.stringify({ metadata: { annotations: { "plumber.dev/ssa": "Ignore" } }, data: { v: "hotfix" } }) });
    const out = await engine.sync(b.req([cm("held", { v: "2" })], first.inventory));
    expect(out.changeSet.entries[0]).toMatchObject({ action: "skipped", message: expect.stringContaining("plumber.dev/ssa: Ignore") });
    expect((await b.get<KubeObject>(cmPath(b.namespace, "held")))?.data).toEqual({ v: "hotfix" });
    const dropped = await engine.sync(b.req([cm("x", { v: "1" })], first.inventory));
    expect(dropped.changeSet.count("pruned")).toBe(0);
    expect(await b.get(cmPath(b.namespace, "held"))).toBeDefined();
  });

  it("an unknown annotation value is an error naming file:line and the field", async () => {
    const b = await newBed();
    await expect(b.engine().plan(b.req([cm("bad", { v: "1" }, { annotations: { "plumber.dev/ssa": "ifnotpresent" } })]))).rejects.toThrow(
      /bad\.yaml:\d+: metadata\.annotations\.plumber\.dev\/ssa: "ifnotpresent" is not one of "Merge", "IfNotPresent", "Ignore"/,
    );
  });
});
