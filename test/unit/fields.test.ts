import { describe, expect, it } from "vitest";
import {
  canonicalFields,
  fieldsMissingFrom,
  removeFields,
  restoreFields,
  contestingManagers,
  driftFingerprint,
  managerFields,
  mergeFields,
  projectFields,
  type FieldsV1,
} from "../../src/engine/fields.js";
import { canonicalJson, sha256Hex } from "../../src/engine/hash.js";

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

const clone = <T>(v: T): T => structuredClone(v);

function entries(o: Obj): Record<string, unknown>[] {
  return o.metadata["managedFields"] as Record<string, unknown>[];
}

function rec(v: unknown): Record<string, unknown> {
  return v as Record<string, unknown>;
}

function configMap(): Obj {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "web-config",
      namespace: "shop",
      uid: "0b6c3c83-8a43-4c0f-9ef4-5f6a0c6f2a11",
      resourceVersion: "48213",
      creationTimestamp: "2024-05-01T10:00:00Z",
      labels: { app: "web", "app.kubernetes.io/managed-by": "plumber", team: "payments" },
      annotations: { "plumber.dev/source": "apps/web.yaml", "kubectl.kubernetes.io/note": "hand edit" },
      managedFields: [
        {
          manager: "plumber",
          operation: "Apply",
          apiVersion: "v1",
          time: "2024-05-01T10:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:data": { "f:LOG_LEVEL": {}, "f:PORT": {} },
            "f:metadata": {
              "f:annotations": { "f:plumber.dev/source": {} },
              "f:labels": { "f:app": {}, "f:app.kubernetes.io/managed-by": {} },
            },
          },
        },
        {
          manager: "kubectl-edit",
          operation: "Update",
          apiVersion: "v1",
          time: "2024-05-02T09:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:data": { "f:EXTRA": {} },
            "f:metadata": {
              "f:annotations": { ".": {}, "f:kubectl.kubernetes.io/note": {} },
              "f:labels": { "f:team": {} },
            },
          },
        },
      ],
    },
    data: { LOG_LEVEL: "info", PORT: "8080", EXTRA: "1" },
  };
}

function deployment(): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      namespace: "shop",
      resourceVersion: "9001",
      generation: 3,
      labels: { app: "web" },
      finalizers: ["plumber.dev/protect", "example.com/other"],
      managedFields: [
        {
          manager: "plumber",
          operation: "Apply",
          apiVersion: "apps/v1",
          time: "2024-05-01T10:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:metadata": {
              "f:finalizers": { 'v:"plumber.dev/protect"': {} },
              "f:labels": { "f:app": {} },
            },
            "f:spec": {
              "f:replicas": {},
              "f:selector": {},
              "f:template": {
                "f:metadata": { "f:labels": { "f:app": {} } },
                "f:spec": {
                  "f:containers": {
                    'k:{"name":"sidecar"}': { ".": {}, "f:image": {}, "f:name": {} },
                    'k:{"name":"main"}': {
                      ".": {},
                      "f:image": {},
                      "f:name": {},
                      "f:ports": {
                        'k:{"containerPort":80,"protocol":"TCP"}': { ".": {}, "f:containerPort": {}, "f:name": {} },
                      },
                    },
                  },
                },
              },
            },
          },
        },
        {
          manager: "kube-controller-manager",
          operation: "Update",
          apiVersion: "apps/v1",
          time: "2024-05-01T10:00:05Z",
          fieldsType: "FieldsV1",
          subresource: "status",
          fieldsV1: { "f:status": { "f:replicas": {}, "f:readyReplicas": {} } },
        },
        {
          manager: "plumber",
          operation: "Apply",
          apiVersion: "apps/v1",
          time: "2024-05-01T10:00:00Z",
          fieldsType: "FieldsV1",
          subresource: "status",
          fieldsV1: { "f:status": { "f:observedGeneration": {} } },
        },
        {
          manager: "kubectl-scale",
          operation: "Update",
          apiVersion: "apps/v1",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:spec": { "f:template": { "f:spec": { "f:containers": { 'k:{"name":"main"}': { "f:resources": {} } } } } } },
        },
      ],
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" }, annotations: { "kubectl.kubernetes.io/restartedAt": "2024-05-02T00:00:00Z" } },
        spec: {
          containers: [
            {
              name: "main",
              image: "ghcr.io/acme/web:1.2.3",
              ports: [
                { containerPort: 80, protocol: "TCP", name: "http" },
                { containerPort: 9090, protocol: "TCP", name: "metrics" },
              ],
              resources: { limits: { cpu: "500m" } },
              terminationMessagePath: "/dev/termination-log",
            },
            { name: "sidecar", image: "envoyproxy/envoy:v1.30.0", imagePullPolicy: "IfNotPresent" },
            { name: "debug", image: "busybox" },
          ],
          restartPolicy: "Always",
        },
      },
    },
    status: { replicas: 2, readyReplicas: 2, observedGeneration: 3 },
  };
}

function tektonTask(): Obj {
  return {
    apiVersion: "tekton.dev/v1",
    kind: "Task",
    metadata: {
      name: "build",
      namespace: "ci",
      resourceVersion: "77",
      managedFields: [
        {
          manager: "plumber",
          operation: "Apply",
          apiVersion: "tekton.dev/v1",
          time: "2024-05-01T10:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:spec": { "f:params": {}, "f:steps": {} } },
        },
      ],
    },
    spec: {
      params: [{ name: "revision", type: "string" }],
      steps: [
        { name: "clone", image: "alpine/git", script: "git clone $(params.revision)" },
        { name: "build", image: "golang:1.22", script: "go build ./..." },
      ],
    },
  };
}

describe("canonicalJson / sha256Hex", () => {
  it("sorts keys at every level and is stable", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe('{"b":[null]}');
    expect(canonicalJson(undefined)).toBe("null");
    expect(canonicalJson("x\"y")).toBe('"x\\"y"');
  });

  it("throws on cycles", () => {
    const a: Record<string, unknown> = {};
    a["self"] = a;
    expect(() => canonicalJson(a)).toThrow(TypeError);
  });

  it("hashes to sha256 hex", () => {
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});

describe("managerFields", () => {
  it("returns the manager's entry for operation and subresource", () => {
    const d = deployment();
    const apply = managerFields(d, "plumber");
    expect(apply).toBeDefined();
    expect(Object.keys(apply ?? {}).sort()).toEqual(["f:metadata", "f:spec"]);
    expect(managerFields(d, "plumber", "Apply", "status")).toEqual({ "f:status": { "f:observedGeneration": {} } });
    expect(managerFields(d, "plumber", "Update")).toBeUndefined();
    expect(managerFields(d, "kube-controller-manager", "Update")).toBeUndefined();
    expect(managerFields(d, "kube-controller-manager", "Update", "status")).toEqual({
      "f:status": { "f:replicas": {}, "f:readyReplicas": {} },
    });
    expect(managerFields(d, "nobody")).toBeUndefined();
  });

  it("merges Update entries of one manager across apiVersions and accepts string fieldsV1", () => {
    const o = configMap();
    entries(o).push({
      manager: "kubectl-edit",
      operation: "Update",
      apiVersion: "v1beta1",
      fieldsType: "FieldsV1",
      fieldsV1: JSON.stringify({ "f:data": { "f:OTHER": {} } }),
    });
    expect(managerFields(o, "kubectl-edit", "Update")?.["f:data"]).toEqual({ "f:EXTRA": {}, "f:OTHER": {} });
  });

  it("skips entries of another fieldsType", () => {
    const o = configMap();
    rec(entries(o)[0])["fieldsType"] = "FieldsV2";
    expect(managerFields(o, "plumber")).toBeUndefined();
  });
});

describe("projectFields", () => {
  it("keeps exactly the owned fields of a ConfigMap", () => {
    const o = configMap();
    expect(projectFields(o, managerFields(o, "plumber") ?? {})).toEqual({
      data: { LOG_LEVEL: "info", PORT: "8080" },
      metadata: {
        annotations: { "plumber.dev/source": "apps/web.yaml" },
        labels: { app: "web", "app.kubernetes.io/managed-by": "plumber" },
      },
    });
  });

  it("projects list-maps by key, sets by value, in the object's order", () => {
    const d = deployment();
    expect(projectFields(d, managerFields(d, "plumber") ?? {})).toEqual({
      metadata: { finalizers: ["plumber.dev/protect"], labels: { app: "web" } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            containers: [
              { name: "main", image: "ghcr.io/acme/web:1.2.3", ports: [{ containerPort: 80, name: "http" }] },
              { name: "sidecar", image: "envoyproxy/envoy:v1.30.0" },
            ],
          },
        },
      },
    });
  });

  it("resolves k: elements by key whatever their position", () => {
    const d = deployment();
    const fields = managerFields(d, "plumber") ?? {};
    const spec = rec(rec(rec(d["spec"])["template"])["spec"]);
    const containers = spec["containers"] as unknown[];
    spec["containers"] = [containers[2], containers[1], containers[0]];
    const p = rec(rec(rec(rec(projectFields(d, fields))["spec"])["template"])["spec"]);
    expect(p["containers"]).toEqual([
      { name: "sidecar", image: "envoyproxy/envoy:v1.30.0" },
      { name: "main", image: "ghcr.io/acme/web:1.2.3", ports: [{ containerPort: 80, name: "http" }] },
    ]);
  });

  it("compares k: key values as JSON values", () => {
    const list = [
      { containerPort: "80", protocol: "TCP", name: "string-port" },
      { containerPort: 80, protocol: "UDP", name: "udp" },
      { containerPort: 80, name: "no-protocol" },
      { containerPort: 80, protocol: "TCP", name: "http" },
    ];
    const fields: FieldsV1 = { "f:ports": { 'k:{"protocol":"TCP","containerPort":80}': { "f:name": {} } } };
    expect(projectFields({ ports: list }, fields)).toEqual({ ports: [{ name: "http" }] });
  });

  it("keeps atomic lists whole (Tekton steps owned as a leaf)", () => {
    const t = tektonTask();
    expect(projectFields(t, managerFields(t, "plumber") ?? {})).toEqual({
      spec: {
        params: [{ name: "revision", type: "string" }],
        steps: [
          { name: "clone", image: "alpine/git", script: "git clone $(params.revision)" },
          { name: "build", image: "golang:1.22", script: "go build ./..." },
        ],
      },
    });
  });

  it("returns a copy, not a view", () => {
    const t = tektonTask();
    const p = rec(rec(projectFields(t, managerFields(t, "plumber") ?? {}))["spec"]);
    (p["steps"] as Record<string, unknown>[])[0]!["image"] = "changed";
    expect((rec(t["spec"])["steps"] as Record<string, unknown>[])[0]!["image"]).toBe("alpine/git");
  });

  it("leaves out missing fields and keeps a node that has only '.'", () => {
    expect(projectFields({ a: {} }, { "f:a": { ".": {}, "f:x": {} }, "f:b": {} })).toEqual({ a: {} });
    expect(projectFields({ l: [{ name: "a", x: 1 }] }, { "f:l": { 'k:{"name":"a"}': { ".": {} } } })).toEqual({ l: [{}] });
  });

  it("matches i: by position and v: by deep equality", () => {
    expect(projectFields({ l: ["a", "b", "c"] }, { "f:l": { "i:1": {} } })).toEqual({ l: ["b"] });
    expect(projectFields({ l: [{ x: 1, y: [2] }, { y: [2], x: 1 }, { x: 2 }] }, { "f:l": { 'v:{"y":[2],"x":1}': {} } })).toEqual({
      l: [
        { x: 1, y: [2] },
        { x: 1, y: [2] },
      ],
    });
  });

  it("keeps a scalar where structure was expected, so a change of shape shows", () => {
    expect(projectFields({ spec: "oops" }, { "f:spec": { "f:replicas": {} } })).toEqual({ spec: "oops" });
    expect(projectFields({ spec: null }, { "f:spec": { "f:replicas": {} } })).toEqual({ spec: null });
  });

  it("treats the root set {} as owning nothing", () => {
    expect(projectFields(configMap(), {})).toEqual({});
    expect(projectFields([1, 2], {})).toEqual([]);
  });

  it("does not throw on malformed input", () => {
    const weird: unknown[] = [
      [null, {}],
      [undefined, { "f:a": {} }],
      [42, { "f:a": { "f:b": {} } }],
      [{ a: [1, { name: "x" }, null] }, { "f:a": { "k:not json": {}, "k:[1]": {}, "k:{}": {}, 'v:"x': {}, "i:-1": {}, "i:x": {}, "z:foo": {}, 'k:{"name":"x"}': {} } }],
      [{ a: { b: 1 } }, { "f:a": "not an object", "f:b": null }],
      [{ a: { b: 1 } }, null],
      [{ a: { b: 1 } }, "f:a"],
      [{ __proto__: 1 }, { "f:__proto__": {} }],
    ];
    for (const [obj, fields] of weird as [unknown, unknown][]) {
      expect(() => projectFields(obj, fields as FieldsV1)).not.toThrow();
    }
    expect(projectFields({ a: [1, { name: "x" }, null] }, { "f:a": { "k:not json": {}, 'k:{"name":"x"}': {}, "z:foo": {} } })).toEqual({
      a: [{ name: "x" }],
    });
    expect(projectFields({ a: { b: 1 }, b: 2 }, { "f:a": "bad", "f:b": null } as unknown as FieldsV1)).toEqual({ a: { b: 1 }, b: 2 });
  });

  it("does not pollute prototypes", () => {
    const obj = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    const p = projectFields(obj, JSON.parse('{"f:__proto__": {}}') as FieldsV1) as Record<string, unknown>;
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(p, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });
});

describe("canonicalFields / mergeFields", () => {
  it("rewrites k:/v: payloads canonically and merges equal keys", () => {
    const f = canonicalFields({
      "f:ports": {
        'k:{"protocol":"TCP","containerPort":80}': { "f:name": {} },
        'k:{"containerPort":80, "protocol":"TCP"}': { "f:port": {} },
        "v:  \"a\"": {},
        "i:007": {},
        "z:odd": {},
      },
    });
    expect(f).toEqual({
      "f:ports": { 'k:{"containerPort":80,"protocol":"TCP"}': { "f:name": {}, "f:port": {} }, 'v:"a"': {}, "i:7": {}, "z:odd": {} },
    });
  });


  it("unions tries", () => {
    expect(mergeFields({ "f:a": { "f:x": {} } }, { "f:a": { "f:y": {} }, "f:b": {} })).toEqual({ "f:a": { "f:x": {}, "f:y": {} }, "f:b": {} });
  });
});

describe("driftFingerprint", () => {
  const fp = (o: Obj): string => driftFingerprint(o, "plumber");

  it("is a sha256 hex and equal for equal snapshots", () => {
    expect(fp(deployment())).toMatch(/^[0-9a-f]{64}$/);
    expect(fp(deployment())).toBe(fp(deployment()));
    expect(fp(configMap())).not.toBe(fp(deployment()));
  });

  it("ignores resourceVersion, status, managedFields times and key order", () => {
    const base = fp(deployment());
    const d = deployment();
    d.metadata["resourceVersion"] = "9999";
    d.metadata["generation"] = 4;
    d["status"] = { replicas: 3, readyReplicas: 1, observedGeneration: 4, conditions: [{ type: "Available" }] };
    for (const e of entries(d)) e["time"] = "2030-01-01T00:00:00Z";
    entries(d).reverse();
    expect(fp(d)).toBe(base);

    const reordered = deployment();
    const fields = rec(entries(reordered)[0])["fieldsV1"] as Record<string, unknown>;
    const spec = rec(fields["f:spec"]);
    rec(entries(reordered)[0])["fieldsV1"] = { "f:spec": spec, "f:metadata": fields["f:metadata"] };
    expect(fp(reordered)).toBe(base);
  });

  it("ignores fields owned by other managers", () => {
    const base = fp(deployment());
    const d = deployment();
    const tmpl = rec(rec(d["spec"])["template"]);
    const main = rec((rec(tmpl["spec"])["containers"] as unknown[])[0]);
    main["resources"] = { limits: { cpu: "2" } };
    rec(tmpl["metadata"])["annotations"] = { "kubectl.kubernetes.io/restartedAt": "2024-06-01T00:00:00Z" };
    (rec(tmpl["spec"])["containers"] as unknown[]).splice(2, 1); // the "debug" container nobody of ours owns
    (d.metadata["finalizers"] as string[]).splice(1, 1);
    expect(fp(d)).toBe(base);

    const cBase = fp(configMap());
    const c = configMap();
    rec(c["data"])["EXTRA"] = "2";
    rec(c.metadata["labels"])["team"] = "search";
    rec(c.metadata["annotations"])["kubectl.kubernetes.io/note"] = "another edit";
    expect(fp(c)).toBe(cBase);
  });

  it("changes when an owned value changes", () => {
    const base = fp(deployment());
    const mutations: ((d: Obj) => void)[] = [
      (d) => (rec(d["spec"])["replicas"] = 3),
      (d) => (rec(rec(rec(d["spec"])["selector"])["matchLabels"])["tier"] = "x"),
      (d) => (rec((rec(rec(rec(d["spec"])["template"])["spec"])["containers"] as unknown[])[1])["image"] = "envoyproxy/envoy:v1.31.0"),
      (d) => {
        const main = rec((rec(rec(rec(d["spec"])["template"])["spec"])["containers"] as unknown[])[0]);
        rec((main["ports"] as unknown[])[0])["name"] = "web";
      },
      (d) => {
        // someone removes the port we own
        const main = rec((rec(rec(rec(d["spec"])["template"])["spec"])["containers"] as unknown[])[0]);
        (main["ports"] as unknown[]).splice(0, 1);
      },
      (d) => (d.metadata["finalizers"] = ["example.com/other"]),
      (d) => (d.metadata["labels"] = {}),
      (d) => {
        // swapping our two containers changes their order in the projection
        const spec = rec(rec(rec(d["spec"])["template"])["spec"]);
        const cs = spec["containers"] as unknown[];
        spec["containers"] = [cs[1], cs[0], cs[2]];
      },
    ];
    for (const mutate of mutations) {
      const d = deployment();
      mutate(d);
      expect(fp(d)).not.toBe(base);
    }

    const t = tektonTask();
    const tBase = fp(t);
    ((rec(t["spec"])["steps"] as unknown[])[1] as Record<string, unknown>)["script"] = "go build -race ./...";
    expect(fp(t)).not.toBe(tBase);
  });

  it("changes when ownership moves away even if values stay", () => {
    const base = fp(configMap());
    const c = configMap();
    const f = rec(rec(entries(c)[0])["fieldsV1"]);
    delete rec(f["f:data"])["f:PORT"];
    rec(rec(entries(c)[1])["fieldsV1"])["f:data"] = { "f:EXTRA": {}, "f:PORT": {} };
    expect(c["data"]).toEqual(configMap()["data"]);
    expect(fp(c)).not.toBe(base);
  });

  it("is the hash of {fields: null} without an Apply entry", () => {
    const none = sha256Hex(canonicalJson({ fields: null }));
    const c = configMap();
    expect(driftFingerprint(c, "someone-else")).toBe(none);
    expect(driftFingerprint(c, "kubectl-edit")).toBe(none); // Update only
    entries(c).splice(0, 1);
    expect(fp(c)).toBe(none);
    expect(fp({ metadata: {} })).toBe(none);
    expect(fp({ metadata: { managedFields: "garbage" } })).toBe(none);
  });

  it("does not throw on malformed objects", () => {
    const bad: unknown[] = [
      {},
      { metadata: null },
      { metadata: { managedFields: [null, 1, "x", { manager: "plumber", operation: "Apply" }] } },
      { metadata: { managedFields: [{ manager: "plumber", operation: "Apply", fieldsV1: "{not json" }] } },
      { metadata: { managedFields: [{ manager: "plumber", operation: "Apply", fieldsV1: { "f:spec": { "k:{": 1, "f:x": [] } } }] }, spec: [1] },
    ];
    for (const o of bad) expect(() => driftFingerprint(o as Obj, "plumber")).not.toThrow();
  });

  it("sees no difference between equivalent k: spellings", () => {
    const a = deployment();
    const b = clone(a);
    const cs = rec(rec(rec(rec(rec(rec(entries(b)[0])["fieldsV1"])["f:spec"])["f:template"])["f:spec"])["f:containers"]);
    const main = rec(cs['k:{"name":"main"}']);
    const ports = rec(main["f:ports"]);
    ports['k:{"protocol":"TCP","containerPort":80}'] = ports['k:{"containerPort":80,"protocol":"TCP"}'];
    delete ports['k:{"containerPort":80,"protocol":"TCP"}'];
    expect(fp(b)).toBe(fp(a));
  });
});

describe("contestingManagers", () => {
  const entry = (manager: string, operation: string, time: string, fieldsV1: Record<string, unknown>, subresource?: string) => ({ manager, operation, time, fieldsType: "FieldsV1", fieldsV1, ...(subresource ? { subresource } : {}) });
  const obj = (managedFields: unknown[]) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", managedFields }, data: { a: "1", b: "2" } });

  it("names managers that wrote in the second of plumber's apply or later, or share a field with it", () => {
    const o = obj([
      entry("plumber", "Apply", "2026-01-01T00:00:10Z", { "f:data": { "f:a": {} } }),
      entry("hpa", "Update", "2026-01-01T00:00:10Z", { "f:data": { "f:b": {} } }),
      entry("old-writer", "Update", "2026-01-01T00:00:05Z", { "f:data": { "f:c": {} } }),
      entry("co-applier", "Apply", "2026-01-01T00:00:01Z", { "f:data": { "f:a": {} } }),
      entry("status-writer", "Update", "2026-01-01T00:00:20Z", { "f:status": {} }, "status"),
    ]);
    expect(contestingManagers(o, "plumber")).toEqual(["co-applier", "hpa"]);
  });

  it("is empty when only plumber and earlier, disjoint writers are there", () => {
    const o = obj([entry("plumber", "Apply", "2026-01-01T00:00:10Z", { "f:data": { "f:a": {} } }), entry("creator", "Update", "2026-01-01T00:00:01Z", { "f:data": { "f:z": {} } })]);
    expect(contestingManagers(o, "plumber")).toEqual([]);
  });
});

describe("foreseeing a takeover: fieldsMissingFrom, removeFields, restoreFields", () => {
  const theirs = { "f:data": { "f:a": {}, "f:b": {} }, "f:spec": { "f:env": { 'k:{"name":"A"}': { ".": {}, "f:value": {} }, 'k:{"name":"OLD"}': { ".": {}, "f:value": {} } }, "f:mode": {} } };
  const keep = { "f:data": { "f:a": {} }, "f:spec": { "f:env": { 'k:{"name":"A"}': { ".": {}, "f:value": {} } } } };
  const obj = { data: { a: "1", b: "2" }, spec: { env: [{ name: "A", value: "1" }, { name: "OLD", value: "x" }], mode: "auto" } };

  it("cuts at the first key the keeper lacks", () => {
    expect(fieldsMissingFrom(theirs, keep)).toEqual({ "f:data": { "f:b": {} }, "f:spec": { "f:env": { 'k:{"name":"OLD"}': {} }, "f:mode": {} } });
  });

  it("removes those fields, list elements by key, and puts back what a fresh create defaults", () => {
    const gone = fieldsMissingFrom(theirs, keep);
    const removed = removeFields(obj, gone);
    expect(removed).toEqual({ data: { a: "1" }, spec: { env: [{ name: "A", value: "1" }] } });
    expect(restoreFields(removed, { data: { a: "1" }, spec: { env: [{ name: "A", value: "1" }], mode: "default" } }, gone)).toEqual({
      data: { a: "1" },
      spec: { env: [{ name: "A", value: "1" }], mode: "default" },
    });
    expect(obj.data.b).toBe("2");
  });
});
