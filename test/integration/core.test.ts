// The core path against the real kube-apiserver and the real git smart-HTTP server:
// poll → fetch → parse → plan (dry-run) → staged server-side apply → prune → persisted state.
import { afterEach, describe, expect, it } from "vitest";
import { StateStore } from "../../src/state/store.js";
import { OWNER_LABEL } from "../../src/engine/marks.js";
import { configMap, getObject, harness, task, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

async function start(files: Record<string, string>, opts?: Parameters<typeof harness>[1]): Promise<Harness> {
  const h = await harness(files, opts);
  open.push(h);
  return h;
}

const cmPath = (h: Harness, name: string) => `/api/v1/namespaces/${h.namespace}/configmaps/${name}`;
type TaskObj = { spec: { steps: { image: string }[] } };
const taskPath = (h: Harness, name: string) => `/apis/tekton.dev/v1/namespaces/${h.namespace}/tasks/${name}`;

describe("core reconcile", () => {
  it("first apply creates every object with plumber's marks and records state in the cluster", async () => {
    const h = await start({
      "config/settings.yaml": configMap("settings", { channel: "nightly" }),
      "tekton/build.yaml": task("build", "alpine:3.20"),
    });
    const res = await h.cycle();
    expect(res.kind).toBe("applied");
    if (res.kind !== "applied") return;
    expect(res.changeSet.summary()).toMatchObject({ created: 2, failed: 0 });

    const cm = await getObject(h.kube, cmPath(h, "settings"));
    expect(cm?.data).toEqual({ channel: "nightly" });
    expect(cm?.metadata.labels).toMatchObject({ "app.kubernetes.io/managed-by": "plumber", [OWNER_LABEL]: h.app });
    const managers = (cm?.metadata.managedFields as { manager: string; operation: string }[]).map((m) => `${m.manager}/${m.operation}`);
    expect(managers).toContain("plumber/Apply");
    const t = await getObject<TaskObj>(h.kube, taskPath(h, "build"));
    expect(t?.spec.steps[0]?.image).toBe("alpine:3.20");

    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state?.revision).toBe(await h.repo.head("main"));
    expect(state?.inventory.map((e) => e.key).sort()).toEqual([`/ConfigMap/${h.namespace}/settings`, `tekton.dev/Task/${h.namespace}/build`]);
  });

  it("a no-op cycle makes one git request, zero writes, zero dry-runs, and one LIST per (kind, namespace)", async () => {
    const files: Record<string, string> = { "tekton/build.yaml": task("build", "alpine:3.20") };
    for (let i = 0; i < 25; i++) files[`config/cm-${i}.yaml`] = configMap(`cm-${i}`, { i: String(i) });
    const h = await start(files);
    expect((await h.cycle()).kind).toBe("applied");
    h.counts();
    for (let round = 0; round < 2; round++) {
      expect((await h.cycle()).kind).toBe("unchanged");
      const c = h.counts();
      // 2 LISTs (ConfigMaps, Tasks) + 1 GET of the app's control record (approvals, pins)
      expect(c).toEqual({ git: 1, api: 3, writes: 0, dryRuns: 0, lists: 2 });
    }
  });

  it("picks up a new commit and writes only what changed", async () => {
    const h = await start({
      "a.yaml": configMap("a", { v: "1" }),
      "b.yaml": configMap("b", { v: "1" }),
      "t.yaml": task("build", "alpine:3.20"),
    });
    await h.cycle();
    const sha = await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "bump a");
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("applied");
    if (res.kind !== "applied") return;
    expect(res.revision).toBe(sha);
    expect(res.changeSet.summary()).toMatchObject({ configured: 1, unchanged: 2, created: 0 });
    expect(res.changeSet.entries.find((e) => e.action === "configured")?.subject).toBe(`ConfigMap/${h.namespace}/a`);
    const c = h.counts();
    // one PATCH for a, two for the state record (applied, then verified healthy); the unchanged
    // objects are never written, and manifests identical to the last applied ones with no drift
    // need no dry-run either
    expect(c.writes).toBe(3);
    expect(c.dryRuns).toBe(1);
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "2" });
  });

  const hack = (h: Harness, name: string) =>
    h.kube.request({
      method: "PATCH",
      path: cmPath(h, name),
      query: { fieldManager: "kubectl-edit" },
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ data: { v: "hacked" } }),
    });

  it("a new commit also restores drift on objects whose manifest did not change, when its sync lists", async () => {
    // At a 1 s interval the last look (the first apply's) is stale after 2 s.
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "b.yaml": configMap("b", { v: "1" }) }, { interval: "1s" });
    await h.cycle();
    await hack(h, "b");
    await new Promise((r) => setTimeout(r, 2100));
    await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "bump a");
    const res = await h.cycle();
    expect(res.kind === "applied" ? res.changeSet.summary() : res).toMatchObject({ configured: 2, unchanged: 0 });
    expect((await getObject(h.kube, cmPath(h, "b")))?.data).toEqual({ v: "1" });
  });

  it("a commit within two intervals of the last look stands on it: drift made since is the next drift look's to repair", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "b.yaml": configMap("b", { v: "1" }) }, { interval: "60s" });
    await h.cycle();
    await hack(h, "b");
    await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }) }, "bump a");
    const res = await h.cycle();
    expect(res.kind === "applied" ? res.changeSet.summary() : res).toMatchObject({ configured: 1, unchanged: 1 });
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "2" });
    // The next round has no commit: its drift look lists, finds b and restores it.
    const next = await h.cycle();
    expect(next.kind).toBe("repaired");
    expect((await getObject(h.kube, cmPath(h, "b")))?.data).toEqual({ v: "1" });
  });

  it("prunes what left the repo, in the reverse of apply order across kinds, and keeps what stayed", async () => {
    const h = await start({
      "a.yaml": configMap("a", { v: "1" }),
      "gone-cm.yaml": configMap("gone-cm", { v: "1" }),
      "sa.yaml": `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: gone-sa\n`,
      "t.yaml": task("gone", "alpine:3.20"),
    });
    await h.cycle();
    await h.repo.commit({ "t.yaml": null, "gone-cm.yaml": null, "sa.yaml": null }, "drop three");
    const res = await h.cycle();
    expect(res.kind).toBe("applied");
    if (res.kind !== "applied") return;
    // Applied ServiceAccount, ConfigMap, then Task (custom resources last): pruned the other way round.
    expect(res.changeSet.entries.filter((e) => e.action === "pruned").map((e) => e.subject)).toEqual([
      `Task/${h.namespace}/gone`,
      `ConfigMap/${h.namespace}/gone-cm`,
      `ServiceAccount/${h.namespace}/gone-sa`,
    ]);
    expect(await getObject(h.kube, taskPath(h, "gone"))).toBeUndefined();
    expect(await getObject(h.kube, cmPath(h, "gone-cm"))).toBeUndefined();
    expect(await getObject(h.kube, `/api/v1/namespaces/${h.namespace}/serviceaccounts/gone-sa`)).toBeUndefined();
    expect(await getObject(h.kube, cmPath(h, "a"))).toBeDefined();
  });

  it("refuses one object defined in two files before any write, naming both file:line", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    await h.cycle();
    await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }), "more/copy.yaml": `# the same object again\n${configMap("a", { v: "3" })}` }, "duplicate");
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.message).toContain(`more/copy.yaml:2: metadata.name: duplicate object ConfigMap/${h.namespace}/a: also defined at a.yaml:1`);
    expect(h.counts()).toMatchObject({ writes: 1, dryRuns: 0 }); // the status record, nothing else
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
  });

  it("does not prune an object someone took over by removing plumber's marks", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "b.yaml": configMap("b", { v: "1" }) });
    await h.cycle();
    await h.kube.request({
      method: "PATCH",
      path: cmPath(h, "b"),
      query: { fieldManager: "someone" },
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ metadata: { labels: { [OWNER_LABEL]: null } } }),
    });
    await h.repo.commit({ "b.yaml": null }, "drop b");
    const res = await h.cycle();
    expect(res.kind).toBe("applied");
    expect(await getObject(h.kube, cmPath(h, "b"))).toBeDefined();
  });

  it("refuses to prune everything when a revision is empty, unless allowEmpty", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    await h.cycle();
    await h.repo.commit({ "a.yaml": null, "README.md": "nothing here" }, "empty");
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind === "failed") expect(res.message).toMatch(/allowEmpty/);
    expect(await getObject(h.kube, cmPath(h, "a"))).toBeDefined();

    await h.reconfigure({ allowEmpty: true });
    const res2 = await h.cycle();
    expect(res2.kind).toBe("applied");
    expect(await getObject(h.kube, cmPath(h, "a"))).toBeUndefined();
  });

  it("restores a managed field changed by someone else, recreates a deleted object, and leaves unmanaged fields alone", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "b.yaml": configMap("b", { v: "1" }), "t.yaml": task("build", "alpine:3.20") });
    await h.cycle();
    // Someone edits a field plumber manages, and adds one plumber does not manage.
    await h.kube.request({
      method: "PATCH",
      path: cmPath(h, "a"),
      query: { fieldManager: "kubectl-edit" },
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ data: { v: "hacked", extra: "theirs" } }),
    });
    await h.kube.request({ method: "DELETE", path: taskPath(h, "build") });
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("repaired");
    if (res.kind !== "repaired") return;
    expect(res.changeSet.entries.map((e) => `${e.action} ${e.subject}`).sort()).toEqual([
      `configured ConfigMap/${h.namespace}/a`,
      `created Task/${h.namespace}/build`,
    ]);
    expect(h.counts().dryRuns).toBe(0);
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1", extra: "theirs" });
    expect((await getObject<TaskObj>(h.kube, taskPath(h, "build")))?.spec.steps[0]?.image).toBe("alpine:3.20");

    // A field plumber does not manage is not drift: the next cycle writes nothing.
    await h.kube.request({
      method: "PATCH",
      path: cmPath(h, "b"),
      query: { fieldManager: "someone" },
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ metadata: { annotations: { "example.com/note": "keep me" } }, data: { other: "x" } }),
    });
    h.counts();
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts().writes).toBe(0);
    const b = await getObject(h.kube, cmPath(h, "b"));
    expect(b?.metadata.annotations).toMatchObject({ "example.com/note": "keep me" });
    expect(b?.data).toEqual({ v: "1", other: "x" });
  });

  it("a revision that fails to parse applies nothing, keeps the last good, names file:line, and is not retried", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "b.yaml": configMap("b", { v: "1" }) });
    const good = await h.repo.head("main");
    await h.cycle();
    const bad = await h.repo.commit({ "a.yaml": configMap("a", { v: "2" }), "b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n data: [oops\n" }, "broken");
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    expect(res.message).toMatch(/b\.yaml:\d+/);
    const c = h.counts();
    expect(c.dryRuns).toBe(0);
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state).toMatchObject({ revision: good, failedRevision: bad, lastResult: "Failed" });
    expect(state?.history.map((r) => `${r.revision}:${r.result}`)).toEqual([`${bad}:Failed`, `${good}:Applied`]);

    // Same bad head again: held, no new attempt, no writes.
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });

    await h.repo.commit({ "b.yaml": configMap("b", { v: "2" }) }, "fixed");
    expect((await h.cycle()).kind).toBe("applied");
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "2" });
  });

  it("an unknown kind fails before any write, naming the file and line", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    await h.cycle();
    await h.repo.commit(
      {
        "a.yaml": configMap("a", { v: "2" }),
        "w.yaml": "# a widget\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
      },
      "widget",
    );
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.message).toMatch(/w\.yaml:2: kind: unknown kind Widget/);
    const c = h.counts();
    expect(c.dryRuns).toBe(0);
    expect(c.writes).toBe(1); // the status record, nothing else
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
  });

  it("a server-side rejection in the dry-run applies nothing, fails the revision for good, and is not retried", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    await h.cycle();
    await h.repo.commit(
      {
        "a.yaml": configMap("a", { v: "2" }),
        // data values must be strings: the apiserver refuses it, in the plan
        "bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  n: {nested: true}\n",
      },
      "bad value",
    );
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.message).toMatch(/bad\.yaml:1: ConfigMap\/.*\/bad/);
    // The object's own fault (the apiserver answers 500 with no reason for this SSA refusal), not an outage.
    expect(res.permanent).toBe(true);
    expect(h.counts().writes).toBe(1);
    expect((await getObject(h.kube, cmPath(h, "a")))?.data).toEqual({ v: "1" });
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
  });

  it("a restarted plumber resumes from the state in the cluster: no re-apply, and it still prunes", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "t.yaml": task("build", "alpine:3.20") });
    await h.cycle();
    await h.restart();
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });

    await h.restart();
    await h.repo.commit({ "t.yaml": null }, "drop task");
    const res = await h.cycle();
    expect(res.kind).toBe("applied");
    if (res.kind === "applied") expect(res.changeSet.count("pruned")).toBe(1);
    expect(await getObject(h.kube, taskPath(h, "build"))).toBeUndefined();
  });

  it("applies a CRD, a Namespace and objects inside both in one revision (staged)", async () => {
    const h = await start({ "a.yaml": configMap("a", { v: "1" }) });
    const group = `${h.app}.example.com`;
    const nsName = `${h.namespace}-extra`;
    await h.repo.commit(
      {
        "crd.yaml": [
          "apiVersion: apiextensions.k8s.io/v1",
          "kind: CustomResourceDefinition",
          "metadata:",
          `  name: gadgets.${group}`,
          "spec:",
          `  group: ${group}`,
          "  scope: Namespaced",
          "  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}",
          "  versions:",
          "    - name: v1",
          "      served: true",
          "      storage: true",
          "      schema:",
          "        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}",
          "",
        ].join("\n"),
        "ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${nsName}\n`,
        "gadget.yaml": `apiVersion: ${group}/v1\nkind: Gadget\nmetadata:\n  name: g1\n  namespace: ${nsName}\nspec:\n  size: 3\n`,
        "cm.yaml": configMap("inside", { k: "v" }, nsName),
      },
      "crd and namespace",
    );
    const res = await h.cycle();
    expect(res.kind === "applied" ? res.changeSet.summary() : res).toMatchObject({ created: 5, failed: 0 });
    expect((await getObject(h.kube, `/apis/${group}/v1/namespaces/${nsName}/gadgets/g1`))?.spec).toEqual({ size: 3 });
    expect(await getObject(h.kube, `/api/v1/namespaces/${nsName}/configmaps/inside`)).toBeDefined();
    h.counts();
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
  });
});
