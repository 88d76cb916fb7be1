// The engine as a library against the real apiserver (issue 11 item 4): no git, no config, no
// reconciler. Apply staging, prune order, drift, ownership between apps, plan without writes.
import { afterEach, describe, expect, it } from "vitest";
import { PlanError, SyncError } from "../../src/engine/engine.js";
import type { InventoryEntry } from "../../src/engine/inventory.js";
import { OWNER_LABEL } from "../../src/engine/marks.js";
import { applyOrder } from "../../src/engine/order.js";
import type { KubeObject } from "../../src/types.js";
import { uniqueName } from "../setup/env.js";
import { bed, cm, cmPath, m, type Bed } from "./engine-support.js";

const open: Bed[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
  for (const b of open.splice(0)) await b.close();
});

async function newBed(owner?: string) {
  const b = await bed(owner);
  open.push(b);
  return b;
}

function crd(group: string, opts: { deprecatedBeta?: boolean } = {}) {
  const schema = { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } } };
  return m({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { kind: "Widget", plural: "widgets", singular: "widget", listKind: "WidgetList" },
      versions: [
        { name: "v1", served: true, storage: true, schema },
        { name: "v1beta1", served: true, storage: false, schema, ...(opts.deprecatedBeta ? { deprecated: true } : {}) },
      ],
    },
  });
}

const mutationsOf = <T extends { method: string; query?: Record<string, string | undefined> }>(reqs: T[]): T[] => reqs.filter((r) => r.method !== "GET" && r.query?.dryRun !== "All");

describe("engine as a library", () => {
  it("stages a Namespace, a CRD and its custom resource in one set; plan writes nothing and says what it cannot dry-run", async () => {
    const b = await newBed();
    const group = `${uniqueName("g")}.example.com`;
    const ns = uniqueName("staged");
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}` }));
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/api/v1/namespaces/${ns}` }));
    const manifests = [
      m({ apiVersion: `${group}/v1beta1`, kind: "Widget", metadata: { name: "w", namespace: ns }, spec: { size: 3 } }),
      cm("settings", { a: "1" }, { namespace: ns }),
      crd(group, { deprecatedBeta: true }),
      m({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }),
    ];
    const engine = b.engine();

    b.sent();
    const plan = await engine.plan(b.req(manifests));
    expect(mutationsOf(b.sent())).toEqual([]);
    const byKind = new Map(plan.objects.map((p) => [p.resource.id.kind, p]));
    expect(plan.objects.map((p) => p.resource.id.kind)).toEqual(["Namespace", "CustomResourceDefinition", "ConfigMap", "Widget"]);
    expect(plan.objects.every((p) => p.action === "created")).toBe(true);
    expect(byKind.get("Widget")?.note).toMatch(/not dry-run: kind Widget is defined by a CustomResourceDefinition this revision creates/);
    expect(byKind.get("ConfigMap")?.note).toBe(`not dry-run: namespace ${ns} is created by this revision`);
    expect(byKind.get("Namespace")?.merged).toBeDefined();
    expect(await b.get(`/api/v1/namespaces/${ns}`)).toBeUndefined();

    b.sent();
    // What the client saw, in order: writes, and each read of the CRD that found it Established.
    const seen: string[] = [];
    const raw = b.client.raw.bind(b.client);
    b.client.raw = async (r) => {
      const res = await raw(r);
      if (r.method === "PATCH" && r.query?.dryRun !== "All") seen.push(`PATCH ${r.path.split("/").slice(-2, -1)[0]}`);
      if (r.method === "GET" && r.path.endsWith(`/customresourcedefinitions/widgets.${group}`) && /"type":"Established","status":"True"/.test(res.text)) seen.push("CRD Established");
      return res;
    };
    const out = await engine.sync(b.req(manifests));
    b.client.raw = raw;
    expect(out.changeSet.summary()).toMatchObject({ created: 4, failed: 0 });
    // The custom resource is written only once its CRD is Established (not merely created).
    expect(seen.indexOf("PATCH customresourcedefinitions")).toBeLessThan(seen.indexOf("CRD Established"));
    expect(seen.indexOf("CRD Established")).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf("CRD Established")).toBeLessThan(seen.indexOf("PATCH widgets"));
    // Stage 0 (Namespace, then CRD) before stage 1, whatever the order of the manifests.
    expect(mutationsOf(b.sent()).filter((r) => r.method === "PATCH").map((r) => r.path.split("/").slice(-2, -1)[0])).toEqual(["namespaces", "customresourcedefinitions", "configmaps", "widgets"]);
    const widget = out.changeSet.entries.find((e) => e.subject === `Widget/${ns}/w`);
    // The deprecated version is served with a Warning header: it reaches the change set.
    expect(widget?.warnings?.join("\n")).toMatch(/v1beta1 Widget is deprecated/);
    expect((await b.get<KubeObject>(`/apis/${group}/v1/namespaces/${ns}/widgets/w`))?.spec).toEqual({ size: 3 });
    expect(out.inventory.map((e) => e.key).sort()).toEqual(
      [`/ConfigMap/${ns}/settings`, `/Namespace//${ns}`, `apiextensions.k8s.io/CustomResourceDefinition//widgets.${group}`, `${group}/Widget/${ns}/w`].sort(),
    );

    // Now that the kind is served, plan dry-runs it too, and shows its warning.
    const again = await engine.plan(b.req([...manifests.slice(0, 1).map((x) => ({ ...x, object: { ...x.object, spec: { size: 4 } } })), ...manifests.slice(1)], out.inventory));
    const w = again.objects.find((p) => p.resource.id.kind === "Widget");
    expect(w?.action).toBe("configured");
    expect(w?.note).toBeUndefined();
    expect(w?.warnings?.join("\n")).toMatch(/deprecated/);
  });

  it("a CRD the apiserver does not establish (its kind is taken) stops the sync before stage 1 writes anything", async () => {
    const b = await newBed();
    const group = `${uniqueName("g")}.example.com`;
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}` }));
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.${group}` }));
    const engine = b.engine();
    await engine.sync(b.req([crd(group)]));
    // Another CRD of the same group claiming kind Widget: the apiserver refuses its names.
    const gizmos = crd(group);
    const spec = gizmos.object.spec as { names: Record<string, string> };
    gizmos.object.metadata.name = `gizmos.${group}`;
    spec.names = { ...spec.names, plural: "gizmos", singular: "gizmo" };
    b.sent();
    const err = await b.engine({ crdTimeoutMs: 20_000 }).sync(b.req([gizmos, cm("after", { v: "1" })])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`CustomResourceDefinition gizmos\\.${group.replace(/\./g, "\\.")}: names not accepted`));
    const written = mutationsOf(b.sent()).map((r) => `${r.method} ${r.path.split("/").slice(-2, -1)[0]}`);
    expect(written).toEqual(["PATCH customresourcedefinitions"]);
    expect(await b.get(cmPath(b.namespace, "after"))).toBeUndefined();
  });

  it("prunes in the exact reverse of apply order, across kinds", async () => {
    const b = await newBed();
    const ns = b.namespace;
    const manifests = [
      m({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "sa" } }),
      cm("cfg", { a: "1" }),
      m({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "r" }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }] }),
      m({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "rb" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "r" }, subjects: [{ kind: "ServiceAccount", name: "sa", namespace: ns }] }),
      m({ apiVersion: "v1", kind: "Service", metadata: { name: "svc" }, spec: { ports: [{ port: 80 }] } }),
      m({ apiVersion: "tekton.dev/v1", kind: "Task", metadata: { name: "t" }, spec: { steps: [{ name: "s", image: "alpine" }] } }),
      m({ apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "cj" }, spec: { schedule: "0 0 * * *", jobTemplate: { spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "alpine" }] } } } } } }),
    ];
    const engine = b.engine();
    b.sent();
    const first = await engine.sync(b.req(manifests));
    const applied = mutationsOf(b.sent()).filter((r) => r.method === "PATCH").map((r) => r.path);
    expect(first.changeSet.summary()).toMatchObject({ created: 7 });

    const pruned: string[] = [];
    const prune = b.engine({ onEntry: (e) => e.action === "pruned" && pruned.push(e.subject) });
    b.sent();
    const out = await prune.sync(b.req([], first.inventory, { allowEmpty: true }));
    const deleted = b.sent().filter((r) => r.method === "DELETE").map((r) => r.path);
    expect(out.changeSet.count("pruned")).toBe(7);
    expect(deleted).toEqual([...applied].reverse());
    const expectedOrder = applyOrder(manifests.map((x) => ({ group: x.object.apiVersion.includes("/") ? x.object.apiVersion.split("/")[0]! : "", kind: x.object.kind, namespace: ns, name: x.object.metadata.name })), (x) => x).reverse();
    expect(pruned).toEqual(expectedOrder.map((x) => `${x.kind}/${ns}/${x.name}`));
    expect(pruned[0]).toBe(`Task/${ns}/t`);
    expect(pruned.at(-1)).toBe(`ServiceAccount/${ns}/sa`);
    for (const p of applied) expect(await b.get(p)).toBeUndefined();
    expect(out.inventory).toEqual([]);
  });

  it("prunes stage 0 last: custom resources and namespaced objects before their CRD and Namespace, in the exact reverse at the apiserver", async () => {
    const b = await newBed();
    const group = `${uniqueName("g")}.example.com`;
    const ns = uniqueName("prune-staged");
    const clusterRole = uniqueName("prune-cr");
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}` }));
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/api/v1/namespaces/${ns}` }));
    cleanups.push(() => b.client.request({ method: "DELETE", path: `/apis/rbac.authorization.k8s.io/v1/clusterroles/${clusterRole}` }));
    const manifests = [
      m({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w", namespace: ns }, spec: { size: 1 } }),
      m({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: clusterRole }, rules: [] }),
      cm("inside", { a: "1" }, { namespace: ns }),
      cm("beside", { a: "1" }),
      crd(group),
      m({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }),
    ];
    const engine = b.engine();
    b.sent();
    const first = await engine.sync(b.req(manifests));
    const applied = mutationsOf(b.sent()).filter((r) => r.method === "PATCH").map((r) => r.path);
    expect(applied.map((p) => p.split("/").slice(-2, -1)[0])).toEqual(["namespaces", "customresourcedefinitions", "configmaps", "configmaps", "clusterroles", "widgets"]);

    b.sent();
    const out = await engine.sync(b.req([], first.inventory, { allowEmpty: true }));
    const deleted = b.sent().filter((r) => r.method === "DELETE").map((r) => r.path);
    expect(out.changeSet.count("pruned")).toBe(6);
    expect(deleted).toEqual([...applied].reverse());
    expect(out.changeSet.entries.filter((e) => e.action === "pruned").map((e) => e.subject)).toEqual([
      `Widget/${ns}/w`,
      `ClusterRole/${clusterRole}`,
      `ConfigMap/${ns}/inside`,
      `ConfigMap/${b.namespace}/beside`,
      `CustomResourceDefinition/widgets.${group}`,
      `Namespace/${ns}`,
    ]);
    expect(await b.get(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${clusterRole}`)).toBeUndefined();
    expect(await b.get(cmPath(b.namespace, "beside"))).toBeUndefined();
    // A Namespace and a CRD go away asynchronously: gone, or on their way out.
    const leaving = async (path: string) => {
      const o = await b.get<KubeObject>(path);
      return o === undefined || Boolean(o.metadata.deletionTimestamp);
    };
    expect(await leaving(`/api/v1/namespaces/${ns}`)).toBe(true);
    expect(await leaving(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`)).toBe(true);
    expect(out.inventory).toEqual([]);
  });

  it("in one sync, every write of the new set comes before the first prune, and prunes go in reverse apply order", async () => {
    const b = await newBed();
    const engine = b.engine();
    const first = await engine.sync(b.req([cm("old-a", { v: "1" }), m({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "old-sa" } }), cm("kept", { v: "1" })]));
    b.sent();
    const out = await engine.sync(
      b.req([cm("kept", { v: "2" }), cm("new-a", { v: "1" }), m({ apiVersion: "tekton.dev/v1", kind: "Task", metadata: { name: "new-t" }, spec: { steps: [{ name: "s", image: "alpine" }] } })], first.inventory),
    );
    const verbs = mutationsOf(b.sent()).map((r) => `${r.method} ${r.path.split("/").at(-1)}`);
    expect(verbs).toEqual(["PATCH kept", "PATCH new-a", "PATCH new-t", "DELETE old-a", "DELETE old-sa"]);
    expect(out.changeSet.summary()).toMatchObject({ configured: 1, created: 2, pruned: 2 });
    expect(out.inventory.map((e) => e.key).sort()).toEqual([`/ConfigMap/${b.namespace}/kept`, `/ConfigMap/${b.namespace}/new-a`, `tekton.dev/Task/${b.namespace}/new-t`]);
  });

  it("repair restores a changed field and a deleted object, leaves another manager's field alone, and then finds no drift", async () => {
    const b = await newBed();
    const engine = b.engine();
    const manifests = [cm("a", { v: "1" }), cm("b", { v: "1" }), cm("c", { v: "1" })];
    const out = await engine.sync(b.req(manifests));
    // Someone changes a field plumber applied and adds one of their own; deletes b; and only
    // adds fields of their own to c, which is not drift.
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "a"), query: { fieldManager: "kubectl-edit" }, contentType: "application/merge-patch+json", body: JSON.stringify({ data: { v: "theirs", extra: "theirs" } }) });
    await b.client.request({ method: "DELETE", path: cmPath(b.namespace, "b") });
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "c"), query: { fieldManager: "someone" }, contentType: "application/merge-patch+json", body: JSON.stringify({ metadata: { annotations: { "example.com/note": "keep" } }, data: { other: "x" } }) });
    const cBefore = (await b.get<KubeObject>(cmPath(b.namespace, "c")))?.metadata.resourceVersion;

    const drift = await engine.detectDrift(b.owner, out.inventory);
    expect(drift.drifted).toEqual([`/ConfigMap/${b.namespace}/a`]);
    expect(drift.missing).toEqual([`/ConfigMap/${b.namespace}/b`]);

    b.sent();
    const repaired = await engine.repair(b.owner, manifests, b.namespace, drift, out.inventory);
    expect(repaired.changeSet.entries.map((e) => `${e.action} ${e.subject}`).sort()).toEqual([`configured ConfigMap/${b.namespace}/a`, `created ConfigMap/${b.namespace}/b`]);
    // No dry-run, no prune, and c is not touched.
    const writes = mutationsOf(b.sent());
    expect(writes.map((r) => `${r.method} ${r.path.split("/").at(-1)}`).sort()).toEqual(["PATCH a", "PATCH b"]);
    const a = await b.get<KubeObject>(cmPath(b.namespace, "a"));
    expect(a?.data).toEqual({ v: "1", extra: "theirs" });
    const managers = (a?.metadata.managedFields as { manager: string; fieldsV1?: { "f:data"?: Record<string, unknown> } }[]).map((f) => [f.manager, Object.keys(f.fieldsV1?.["f:data"] ?? {}).sort()]);
    expect(managers).toEqual(expect.arrayContaining([["plumber", ["f:v"]], ["kubectl-edit", ["f:extra"]]]));
    expect((await b.get<KubeObject>(cmPath(b.namespace, "b")))?.data).toEqual({ v: "1" });
    const c = await b.get<KubeObject>(cmPath(b.namespace, "c"));
    expect(c?.metadata.resourceVersion).toBe(cBefore);
    expect(c?.metadata.annotations?.["example.com/note"]).toBe("keep");
    expect(c?.data).toEqual({ v: "1", other: "x" });

    const after = await engine.detectDrift(b.owner, repaired.inventory);
    expect({ drifted: after.drifted, missing: after.missing }).toEqual({ drifted: [], missing: [] });
  });

  it("plan over drift shows the changed object as configured and the deleted one as created, and writes nothing", async () => {
    const b = await newBed();
    const engine = b.engine();
    const manifests = [cm("a", { v: "1" }), cm("b", { v: "1" }), cm("c", { v: "1" })];
    const out = await engine.sync(b.req(manifests));
    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "a"), query: { fieldManager: "kubectl-edit" }, contentType: "application/merge-patch+json", body: JSON.stringify({ data: { v: "theirs" } }) });
    await b.client.request({ method: "DELETE", path: cmPath(b.namespace, "b") });
    const rvs = async () => Promise.all(["a", "c"].map(async (n) => (await b.get<KubeObject>(cmPath(b.namespace, n)))?.metadata.resourceVersion));
    const before = await rvs();
    b.sent();
    const plan = await engine.plan(b.req(manifests, out.inventory));
    expect(mutationsOf(b.sent())).toEqual([]);
    expect(plan.objects.map((p) => `${p.action} ${p.resource.id.name}`)).toEqual(["configured a", "created b", "unchanged c"]);
    expect(plan.prune).toEqual([]);
    expect(await rvs()).toEqual(before);
    expect(await b.get(cmPath(b.namespace, "b"))).toBeUndefined();
    expect((await b.get<KubeObject>(cmPath(b.namespace, "a")))?.data).toEqual({ v: "theirs" });
  });

  it("detects drift and missing objects with one LIST per kind, names the contesting manager, and treats intent-only entries as missing", async () => {
    const b = await newBed();
    const engine = b.engine();
    const out = await engine.sync(b.req([cm("a", { v: "1" }), cm("b", { v: "1" }), cm("c", { v: "1" })]));
    expect((await engine.detectDrift(b.owner, out.inventory)).drifted).toEqual([]);

    await b.client.request({ method: "PATCH", path: cmPath(b.namespace, "a"), query: { fieldManager: "hpa-like-controller" }, contentType: "application/merge-patch+json", body: JSON.stringify({ data: { v: "theirs" } }) });
    await b.client.request({ method: "DELETE", path: cmPath(b.namespace, "b") });
    const intentOnly: InventoryEntry = { key: `/ConfigMap/${b.namespace}/never`, apiVersion: "v1", fp: "" };
    const written = out.inventory.find((e) => e.key.endsWith("/c")) as InventoryEntry;
    b.sent();
    const drift = await engine.detectDrift(b.owner, [...out.inventory, intentOnly, { ...written, fp: "" }]);
    const reqs = b.sent();
    expect(reqs.filter((r) => r.method === "GET" && r.list).length).toBe(1);
    expect(reqs.filter((r) => r.method !== "GET")).toEqual([]);
    expect(drift.drifted).toEqual([`/ConfigMap/${b.namespace}/a`]);
    expect(drift.contested.get(`/ConfigMap/${b.namespace}/a`)).toEqual(["hpa-like-controller"]);
    expect(drift.missing.sort()).toEqual([`/ConfigMap/${b.namespace}/b`, `/ConfigMap/${b.namespace}/c`, `/ConfigMap/${b.namespace}/never`].sort());
  });

  it("refuses an object another app owns, naming both apps, unless the manifest adopts it; the old owner never prunes it", async () => {
    const a = await newBed(uniqueName("app-a"));
    const ownerB = uniqueName("app-b");
    const ns = a.namespace;
    const outA = await a.engine().sync(a.req([cm("shared", { v: "a" }), cm("only-a", { v: "a" })]));
    const before = (await a.get<KubeObject>(cmPath(ns, "shared")))?.metadata.resourceVersion;

    const engineB = a.engine();
    const reqB = (annotations?: Record<string, string>) => ({ ...a.req([cm("shared", { v: "b" }, { annotations })]), owner: ownerB });
    a.sent();
    const err = await engineB.sync(reqB()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanError);
    expect((err as Error).message).toContain(`belongs to plumber app "${a.owner}"; app "${ownerB}" may not take it`);
    expect((err as Error).message).toContain("plumber.dev/adopt: enabled");
    expect((err as PlanError).changeSet.entries[0]?.source?.file).toBe("shared.yaml");
    await expect(engineB.plan(reqB())).rejects.toThrow(/belongs to plumber app/);
    expect(mutationsOf(a.sent())).toEqual([]);
    expect((await a.get<KubeObject>(cmPath(ns, "shared")))?.metadata.resourceVersion).toBe(before);

    const adopted = await engineB.sync(reqB({ "plumber.dev/adopt": "enabled" }));
    expect(adopted.changeSet.summary()).toMatchObject({ configured: 1 });
    const live = await a.get<KubeObject>(cmPath(ns, "shared"));
    expect(live?.metadata.labels?.[OWNER_LABEL]).toBe(ownerB);

    // a drops both: it prunes its own object, never the one b now owns.
    const pruned = await a.engine().sync(a.req([], outA.inventory, { allowEmpty: true }));
    expect(pruned.changeSet.entries.map((e) => `${e.action} ${e.subject}`).sort()).toEqual([`pruned ConfigMap/${ns}/only-a`, `skipped ConfigMap/${ns}/shared`]);
    expect(pruned.changeSet.entries.find((e) => e.action === "skipped")?.message).toContain(`now app "${ownerB}"'s`);
    expect((await a.get<KubeObject>(cmPath(ns, "shared")))?.data).toEqual({ v: "b" });
    // a's drift check sees it missing (it lost a's marks); repair leaves it to b instead of taking it back.
    const drift = await a.engine().detectDrift(a.owner, outA.inventory);
    expect(drift.missing).toContain(`/ConfigMap/${ns}/shared`);
    const repaired = await a.engine().repair(a.owner, [cm("shared", { v: "a" })], ns, drift, outA.inventory);
    expect(repaired.changeSet.entries).toEqual([expect.objectContaining({ action: "skipped", message: expect.stringContaining(`belongs to plumber app "${ownerB}"`) })]);
    expect((await a.get<KubeObject>(cmPath(ns, "shared")))?.metadata.labels?.[OWNER_LABEL]).toBe(ownerB);
    // and a, still holding it in git, is refused in turn.
    await expect(a.engine().sync(a.req([cm("shared", { v: "a" })], outA.inventory))).rejects.toThrow(new RegExp(`belongs to plumber app "${ownerB}"`));
  });

  it("a first deploy looks up objects it does not own yet: a GET each for a few, one LIST for many of a kind", async () => {
    const b = await newBed();
    const many = Array.from({ length: 20 }, (_, i) => cm(`many-${i}`, { i: String(i) }));
    b.sent();
    await b.engine().plan(b.req([...many, m({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "one" } })]));
    const reads = b.sent().filter((r) => r.method === "GET" && !r.path.startsWith("/api?") && r.path !== "/api" && r.path !== "/apis");
    const cmList = `/api/v1/namespaces/${b.namespace}/configmaps`;
    expect(reads.filter((r) => r.path === cmList && !r.query?.labelSelector)).toHaveLength(1);
    expect(reads.filter((r) => r.path.startsWith(`${cmList}/`))).toEqual([]);
    expect(reads.filter((r) => r.path === `/api/v1/namespaces/${b.namespace}/serviceaccounts/one`)).toHaveLength(1);
  });

  it("a failed object carries the apiserver's reason as flags: refused in the dry-run it fails the plan for good; a write refused on the way is transient, and the inventory keeps what was written", async () => {
    const b = await newBed();
    const engine = b.engine();
    // A data key that is not a valid config key: the apiserver refuses it in the dry-run (422 Invalid).
    const bad = m({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "bad" }, data: { "not a key!": "x" } }, "bad.yaml");
    b.sent();
    const planErr = await engine.sync(b.req([cm("fine", { v: "1" }), bad])).catch((e: unknown) => e);
    expect(planErr).toBeInstanceOf(PlanError);
    const failed = (planErr as PlanError).changeSet.entries.filter((e) => e.action === "failed");
    expect(failed.map((e) => e.subject)).toEqual([`ConfigMap/${b.namespace}/bad`]);
    expect(failed[0]?.reason).toBe("Invalid");
    expect(failed[0]?.transient).toBeUndefined();
    expect(mutationsOf(b.sent())).toEqual([]);

    // A write the client refuses to send (a standby's gate), after one that went through.
    b.client.writeGate = (r) => (r.path.endsWith("/second") ? "not the leader" : undefined);
    const syncErr = await engine.sync(b.req([cm("first", { v: "1" }), cm("second", { v: "1" })])).catch((e: unknown) => e);
    b.client.writeGate = undefined;
    expect(syncErr).toBeInstanceOf(SyncError);
    const refused = (syncErr as SyncError).changeSet.entries.find((e) => e.subject === `ConfigMap/${b.namespace}/second`);
    expect(refused).toMatchObject({ action: "failed", reason: "WriteRefused", transient: true });
    // Written: recorded with its fingerprint. Refused: kept as unverified (fp ""), since a write whose answer is lost may have landed.
    expect((syncErr as SyncError).inventory.map((e) => [e.key, e.fp === ""]).sort()).toEqual([
      [`/ConfigMap/${b.namespace}/first`, false],
      [`/ConfigMap/${b.namespace}/second`, true],
    ]);
    expect((await b.get<KubeObject>(cmPath(b.namespace, "first")))?.data).toEqual({ v: "1" });
    expect(await b.get(cmPath(b.namespace, "second"))).toBeUndefined();
  });

  it("the guard refuses objects before any write, Namespaces included", async () => {
    const b = await newBed();
    const guard = (id: { kind: string; namespace: string; name: string }) => (id.name.startsWith("plumber-") ? `${id.kind} ${id.name} is plumber's own` : undefined);
    b.sent();
    const err = await b.engine().sync(b.req([cm("fine", { v: "1" }), cm("plumber-control-x", { approve: "yes" }), m({ apiVersion: "v1", kind: "Namespace", metadata: { name: "plumber-state" } })], [], { guard })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanError);
    expect((err as Error).message).toContain("ConfigMap plumber-control-x is plumber's own");
    expect((err as Error).message).toContain("Namespace plumber-state is plumber's own");
    expect(mutationsOf(b.sent())).toEqual([]);
    expect(await b.get(cmPath(b.namespace, "fine"))).toBeUndefined();
  });

  it("plan is sync with the writes left out: resourceVersions do not move and nothing is written", async () => {
    const b = await newBed();
    const engine = b.engine();
    const out = await engine.sync(b.req([cm("a", { v: "1" }), cm("b", { v: "1" }), cm("gone", { v: "1" })]));
    const rvs = async () => Promise.all(["a", "b", "gone"].map(async (n) => (await b.get<KubeObject>(cmPath(b.namespace, n)))?.metadata.resourceVersion));
    const before = await rvs();
    b.sent();
    const plan = await engine.plan(b.req([cm("a", { v: "2" }), cm("b", { v: "1" }), cm("new", { v: "1" })], out.inventory, { namespacePolicy: { allowedNamespaces: [b.namespace] } }));
    expect(mutationsOf(b.sent())).toEqual([]);
    expect(await rvs()).toEqual(before);
    expect(await b.get(cmPath(b.namespace, "new"))).toBeUndefined();
    expect(plan.objects.map((p) => `${p.action} ${p.resource.id.name}`).sort()).toEqual(["configured a", "created new", "unchanged b"]);
    expect(plan.prune.map((p) => p.subject)).toEqual([`ConfigMap/${b.namespace}/gone`]);
    // The namespace policy applies to plan exactly as to sync.
    await expect(engine.plan(b.req([cm("x", { v: "1" }, { namespace: "elsewhere" })], [], { namespacePolicy: { allowedNamespaces: [b.namespace] } }))).rejects.toThrow(/namespace "elsewhere" .* not allowed/);
  });

  it("records intent (previous ∪ desired, new entries fp \"\") before the first write; prune deletes intent-only objects that exist", async () => {
    const b = await newBed();
    const engine = b.engine();
    const first = await engine.sync(b.req([cm("a", { v: "1" })]));
    const seen: { inventory: InventoryEntry[]; bExisted: boolean }[] = [];
    const recordIntent = async (inventory: InventoryEntry[]) => {
      seen.push({ inventory, bExisted: (await b.get(cmPath(b.namespace, "b"))) !== undefined });
    };
    const out = await engine.sync(b.req([cm("b", { v: "1" })], first.inventory, { recordIntent }));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.bExisted).toBe(false);
    expect(seen[0]?.inventory.map((e) => [e.key, e.fp === ""]).sort()).toEqual([
      [`/ConfigMap/${b.namespace}/a`, false],
      [`/ConfigMap/${b.namespace}/b`, true],
    ]);
    expect(out.inventory.map((e) => e.key)).toEqual([`/ConfigMap/${b.namespace}/b`]);
    expect(await b.get(cmPath(b.namespace, "a"))).toBeUndefined();

    // A kill after b was written but before its fp was recorded leaves b as fp "": a later
    // revision without b still prunes it.
    const intentOnly = out.inventory.map((e) => ({ ...e, fp: "" }));
    const pruned = await engine.sync(b.req([cm("c", { v: "1" })], intentOnly));
    expect(pruned.changeSet.entries.filter((e) => e.action === "pruned").map((e) => e.subject)).toEqual([`ConfigMap/${b.namespace}/b`]);
    expect(await b.get(cmPath(b.namespace, "b"))).toBeUndefined();
  });
});
