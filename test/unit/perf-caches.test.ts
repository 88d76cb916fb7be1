// What keeps a one-line commit to a big app cheap: parsed files reused by blob id, resources and
// hashes reused by manifest identity and by resourceVersion, and polls spaced from listing to listing. Each
// cache must give exactly what computing afresh gives.
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import type { InventoryEntry } from "../../src/engine/inventory.js";
import type { KubeClient } from "../../src/kube/client.js";
import type { Discovery, ResourceMapping } from "../../src/kube/discovery.js";
import { inventoryTargets } from "../../src/engine/live.js";
import { resolveResources, type CachedResource } from "../../src/engine/resource.js";
import { ManifestCache } from "../../src/manifests/read.js";
import { parseManifests } from "../../src/manifests/parse.js";
import { untilNextListing } from "../../src/reconcile/poller.js";
import { FileProblemError, type KubeObject } from "../../src/types.js";

const cm: ResourceMapping = { group: "", version: "v1", kind: "ConfigMap", resource: "configmaps", namespaced: true };
const discovery = {
  ensureLoaded: async () => {},
  refresh: async () => {},
  lookup: (apiVersion: string, kind: string) => (apiVersion === "v1" && kind === "ConfigMap" ? cm : undefined),
  hasKind: (_g: string, kind: string) => kind === "ConfigMap",
} as unknown as Discovery;

const task: ResourceMapping = { group: "tekton.dev", version: "v1", kind: "Task", resource: "tasks", namespaced: true };
/** Serves ConfigMaps and Tekton Tasks. */
const both = {
  ...discovery,
  lookup: (apiVersion: string, kind: string) => (apiVersion === "v1" && kind === "ConfigMap" ? cm : apiVersion === "tekton.dev/v1" && kind === "Task" ? task : undefined),
} as unknown as Discovery;

const file = (path: string, names: string[], oid: string) => ({
  path,
  oid,
  content: names.map((n) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${n}\ndata:\n  k: "${n}"\n`).join("---\n"),
});

describe("ManifestCache", () => {
  it("parses what parseManifests parses, and reuses an unchanged file's manifests (same blob id) as the same objects", () => {
    const cache = new ManifestCache();
    const a = file("a.yaml", ["a1", "a2"], "oid-a");
    const b = file("b.yaml", ["b1"], "oid-b1");
    const first = cache.parse([a, b]);
    expect(first).toEqual(parseManifests([a, b]));
    const b2 = file("b.yaml", ["b1", "b2"], "oid-b2");
    const second = cache.parse([a, b2]);
    expect(second).toEqual(parseManifests([a, b2]));
    expect(second[0]?.object).toBe(first[0]?.object);
    expect(second[1]?.object).toBe(first[1]?.object);
    expect(second[2]?.object).not.toBe(first[2]?.object);
  });

  it("re-parses a file whose blob changed under the same path, and files without a blob id every time", () => {
    const cache = new ManifestCache();
    const first = cache.parse([file("a.yaml", ["a1"], "x")]);
    expect(cache.parse([file("a.yaml", ["other"], "y")]).map((m) => m.object.metadata.name)).toEqual(["other"]);
    const noOid = { path: "c.yaml", content: file("c.yaml", ["c1"], "").content };
    expect(cache.parse([noOid])[0]?.object).not.toBe(cache.parse([noOid])[0]?.object);
    expect(first[0]?.object.metadata.name).toBe("a1");
  });

  it("knows a file by path and blob id and gives back its manifests unread; problems of the files read still all come out", () => {
    const cache = new ManifestCache();
    const a = file("a.yaml", ["a1", "a2"], "oid-a");
    const first = cache.parse([a, file("b.yaml", ["b1"], "oid-b")]);
    expect(cache.has("a.yaml", "oid-a")).toBe(true);
    expect(cache.has("a.yaml", "oid-other")).toBe(false);
    expect(cache.has("a.yaml", "oid-a", { maxAliasCount: 1 })).toBe(false);
    const known = { path: "a.yaml", oid: "oid-a", known: true as const };
    const second = cache.parse([known, file("b.yaml", ["b2"], "oid-b2")]);
    expect(second.map((m) => m.object.metadata.name)).toEqual(["a1", "a2", "b2"]);
    expect(second[0]?.object).toBe(first[0]?.object);
    const bad = { path: "c.yaml", oid: "c", content: "kind: ConfigMap\n" };
    expect(() => cache.parse([known, bad])).toThrow(FileProblemError);
    // The failed parse forgot everything: nothing is known any more.
    expect(cache.has("a.yaml", "oid-a")).toBe(false);
    expect(() => cache.parse([known])).toThrow(/not in the cache/);
  });

  it("reports the problems of every file at once, as parseManifests does", () => {
    const cache = new ManifestCache();
    const good = file("a.yaml", ["a1"], "a");
    cache.parse([good]);
    const bad1 = { path: "b.yaml", oid: "b", content: "kind: ConfigMap\n" };
    const bad2 = { path: "c.yaml", oid: "c", content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n" };
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      throw new Error("no error");
    };
    const cached = err(() => cache.parse([good, bad1, bad2]));
    const plain = err(() => parseManifests([good, bad1, bad2]));
    expect(cached).toBeInstanceOf(FileProblemError);
    expect((cached as FileProblemError).message).toBe((plain as FileProblemError).message);
    expect(new Set((cached as FileProblemError).problems.map((p) => p.file))).toEqual(new Set(["b.yaml", "c.yaml"]));
  });
});

describe("Engine.desiredHash cached per parsed manifest", () => {
  it("equals the hash computed afresh for every owner and namespace the same manifest is resolved with", async () => {
    const manifests = new ManifestCache().parse([file("a.yaml", ["a1"], "a")]);
    const cached = new Engine({ client: {} as KubeClient, discovery, hashKey: new Uint8Array(32).fill(7) });
    const hashes = new Set<string>();
    for (const [owner, ns] of [["app1", "ns1"], ["app2", "ns1"], ["app1", "ns2"], ["app1", "ns1"]] as const) {
      const [r] = await cached.resolve(owner, manifests, ns);
      const fresh = new Engine({ client: {} as KubeClient, discovery, hashKey: new Uint8Array(32).fill(7) });
      const [again] = await fresh.resolve(owner, parseManifests([file("a.yaml", ["a1"], "a")]), ns);
      expect(cached.desiredHash(r!)).toBe(fresh.desiredHash(again!));
      hashes.add(cached.desiredHash(r!));
    }
    expect(hashes.size).toBe(3);
  });
});

describe("drift with fingerprints cached by resourceVersion", () => {
  const live = (value: string, rv: string): KubeObject => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "c",
      namespace: "ns",
      uid: "u-1",
      resourceVersion: rv,
      labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/app": "app" },
      managedFields: [{ manager: "plumber", operation: "Apply", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:k": {} } } }],
    },
    data: { k: value },
  });

  it("sees a change that came with a new resourceVersion, and none while it stays", async () => {
    let current = live("1", "10");
    const client = { request: async () => ({ status: 200, body: { items: [structuredClone(current)] }, warnings: [] }) } as unknown as KubeClient;
    const engine = new Engine({ client, discovery });
    const inventory: InventoryEntry[] = [{ key: "/ConfigMap/ns/c", apiVersion: "v1", fp: engine.fingerprint(live("1", "10")) }];
    expect((await engine.detectDrift("app", inventory)).drifted).toEqual([]);
    current = live("2", "11");
    expect((await engine.detectDrift("app", inventory)).drifted).toEqual(["/ConfigMap/ns/c"]);
    expect((await engine.detectDrift("app", inventory)).drifted).toEqual(["/ConfigMap/ns/c"]);
    current = live("1", "12");
    expect((await engine.detectDrift("app", inventory)).drifted).toEqual([]);
  });
});

describe("untilNextListing", () => {
  it("takes the cycle's time out of the interval, leaving at least a tenth of it", () => {
    expect(untilNextListing(1000, 0)).toBe(1000);
    expect(untilNextListing(1000, 300)).toBe(700);
    expect(untilNextListing(1000, 950)).toBe(100);
    expect(untilNextListing(1000, 5000)).toBe(100);
    expect(untilNextListing(1000, -5)).toBe(1000);
  });
});

describe("a LIST begun before the revision is fetched", () => {
  const recording = () => {
    const lists: string[] = [];
    const client = {
      request: async (req: { method: string; path: string; body?: string }) => {
        if (req.method === "GET") {
          lists.push(req.path);
          return { status: 200, body: { items: [] }, warnings: [] };
        }
        const obj = JSON.parse(req.body ?? "{}") as KubeObject;
        return { status: 200, body: { ...obj, metadata: { ...obj.metadata, resourceVersion: "" } }, warnings: [] };
      },
      getOptional: async () => undefined,
    } as unknown as KubeClient;
    return { client, lists };
  };
  const manifests = parseManifests([
    { path: "a.yaml", content: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n" },
    { path: "t.yaml", content: "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec: {}\n" },
  ]);
  const previous: InventoryEntry[] = [{ key: "/ConfigMap/ns/a", apiVersion: "v1", fp: "x", dh: "y" }];
  const req = { owner: "app", manifests, defaultNamespace: "ns", previous, prune: true, allowEmpty: false };

  it("is taken by the plan, which lists only the (kind, namespace) the revision adds", async () => {
    const { client, lists } = recording();
    const engine = new Engine({ client, discovery: both });
    const prefetched = engine.prefetchLive("app", previous);
    const plan = await engine.plan({ ...req, prefetched });
    expect(plan.objects.map((o) => o.action)).toEqual(["created", "created"]);
    expect(lists.filter((p) => p.includes("/configmaps"))).toHaveLength(1);
    expect(lists.filter((p) => p.includes("/tasks"))).toHaveLength(1);
  });

  it("is not taken for another owner: the plan lists for itself", async () => {
    const { client, lists } = recording();
    const engine = new Engine({ client, discovery: both });
    const prefetched = engine.prefetchLive("other", previous);
    await engine.plan({ ...req, prefetched });
    expect(lists.filter((p) => p.includes("/configmaps"))).toHaveLength(2);
  });
});

describe("resolveResources with a cache (a commit resolves only the manifests it changed)", () => {
  const manifests = parseManifests([{ path: "a.yaml", content: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n" }]);
  const gen = (g: number, mapping: ResourceMapping = cm) => ({ ...discovery, generation: g, lookup: (v: string, k: string) => (v === "v1" && k === "ConfigMap" ? mapping : undefined) }) as unknown as Discovery;
  const opts = (d: Discovery, more: Partial<Parameters<typeof resolveResources>[1]> = {}) => ({ owner: "app", defaultNamespace: "ns", discovery: d, ...more });

  it("gives back the same resources for the same manifests, equal to resolving afresh", () => {
    const cache = new WeakMap<object, CachedResource>();
    const first = resolveResources(manifests, opts(gen(1), { cache }));
    const again = resolveResources(manifests, opts(gen(1), { cache }));
    expect(again).toHaveLength(2);
    again.forEach((r, i) => expect(r).toBe(first[i]));
    expect(again).toEqual(resolveResources(manifests, opts(gen(1))));
  });

  it("resolves afresh for another owner, namespace or policy, and when discovery answers with another mapping", () => {
    const cache = new WeakMap<object, CachedResource>();
    const first = resolveResources(manifests, opts(gen(1), { cache }));
    const other = resolveResources(manifests, opts(gen(1), { cache, owner: "other" }));
    expect(other[0]).not.toBe(first[0]);
    expect(other[0]?.object.metadata.labels).toEqual(resolveResources(manifests, opts(gen(1), { owner: "other" }))[0]?.object.metadata.labels);
    const ns = resolveResources(manifests, opts(gen(1), { cache, defaultNamespace: "elsewhere" }));
    expect(ns[0]?.id.namespace).toBe("elsewhere");
    const forced = resolveResources(manifests, opts(gen(1), { cache, policy: { targetNamespace: "forced" } }));
    expect(forced[0]?.id.namespace).toBe("forced");
    // Discovery refreshed and serves ConfigMaps under a new mapping: the resource is new, with it.
    const moved: ResourceMapping = { ...cm, resource: "configmaps2" };
    resolveResources(manifests, opts(gen(1), { cache }));
    const after = resolveResources(manifests, opts(gen(2, moved), { cache }));
    expect(after[0]?.mapping).toBe(moved);
    // The same answer at a new generation keeps the resource.
    const same = resolveResources(manifests, opts(gen(3, moved), { cache }));
    expect(same[0]).toBe(after[0]);
  });

  it("still refuses a duplicate among cached manifests", () => {
    const cache = new WeakMap<object, CachedResource>();
    resolveResources(manifests, opts(gen(1), { cache }));
    expect(() => resolveResources([...manifests, manifests[0] as (typeof manifests)[0]], opts(gen(1), { cache }))).toThrow(/duplicate object ConfigMap\/ns\/a/);
  });
});

describe("inventoryTargets", () => {
  const e = (key: string, apiVersion: string): InventoryEntry => ({ key, apiVersion, fp: "", dh: "" });

  it("is one target per (kind, namespace), whatever the order of the keys, and none for a kind not served", () => {
    const inv = [
      e("/ConfigMap/a/x", "v1"),
      e("/ConfigMap/a/y", "v1"),
      e("tekton.dev/Task/a/t", "tekton.dev/v1"),
      e("/ConfigMap/b/x", "v1"),
      e("/ConfigMap/a/z", "v1"),
      e("tekton.dev/Task/a/u", "tekton.dev/v1"),
      e("example.com/Gone/a/g", "example.com/v1"),
    ];
    const got = inventoryTargets(both, inv).map((t) => `${t.mapping.resource}/${t.namespace}`);
    expect(got.sort()).toEqual(["configmaps/a", "configmaps/b", "tasks/a"]);
  });
});
