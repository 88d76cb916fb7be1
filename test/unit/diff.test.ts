import { describe, expect, it } from "vitest";
import { diffObject } from "../../src/engine/diff.js";
import type { KubeObject } from "../../src/types.js";

const secret = (data: Record<string, string>, extra: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "s", namespace: "ns", resourceVersion: "7", annotations: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ data }), ...extra } },
  data,
});

describe("diffObject", () => {
  it("shows a changed field as a unified diff and drops server bookkeeping", () => {
    const live: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", resourceVersion: "1", managedFields: [{ manager: "x" }] }, data: { v: "1" } };
    const merged: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", resourceVersion: "2", managedFields: [{ manager: "y" }] }, data: { v: "2" } };
    const d = diffObject("ConfigMap/a", live, merged);
    expect(d).toContain("--- live/ConfigMap/a");
    expect(d).toContain("+++ merged/ConfigMap/a");
    expect(d).toMatch(/^- {2}v: "1"$/m);
    expect(d).toMatch(/^\+ {2}v: "2"$/m);
    expect(d).not.toContain("resourceVersion");
    expect(d).not.toContain("managedFields");
  });

  it("is empty when only bookkeeping differs", () => {
    const a: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", resourceVersion: "1", generation: 1 }, data: { v: "1" } };
    const b: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", resourceVersion: "9", generation: 4 }, data: { v: "1" } };
    expect(diffObject("ConfigMap/a", a, b)).toBe("");
  });

  it("never shows secret values, before or after, and says which keys change", () => {
    const d = diffObject("Secret/ns/s", secret({ user: "YWRtaW4=", pass: "c2VjcmV0MQ==" }), secret({ user: "YWRtaW4=", pass: "c2VjcmV0Mg==", token: "dG9r" }));
    for (const value of ["YWRtaW4=", "c2VjcmV0MQ==", "c2VjcmV0Mg==", "dG9r", "admin", "secret"]) expect(d).not.toContain(value);
    expect(d).toMatch(/^- {2}pass: "\*\*\* \(before\)"$/m);
    expect(d).toMatch(/^\+ {2}pass: "\*\*\* \(after\)"$/m);
    expect(d).toMatch(/^\+ {2}token: "\*\*\*"$/m);
    expect(d).not.toMatch(/^[-+] {2}user:/m);
  });

  it("shows a new object against /dev/null", () => {
    const d = diffObject("ConfigMap/a", undefined, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { v: "1" } });
    expect(d).toContain("--- /dev/null");
    expect(d).toMatch(/^\+kind: ConfigMap$/m);
  });
  it("shows only real changes: a live object from a LIST (no apiVersion, no kind) against the dry-run", () => {
    const live = { metadata: { name: "a", namespace: "ns", resourceVersion: "1" }, data: { v: "1", same: "x" } } as unknown as KubeObject;
    const merged: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "ns", resourceVersion: "2" }, data: { v: "2", same: "x" } };
    const d = diffObject("ConfigMap/ns/a", live, merged);
    const changed = d.split("\n").filter((l) => /^[-+][^-+]/.test(l));
    expect(changed).toEqual(['-  v: "1"', '+  v: "2"']);
    expect(diffObject("ConfigMap/ns/a", live, { ...merged, data: { v: "1", same: "x" } })).toBe("");
  });
});
