import { describe, expect, it } from "vitest";
import { parseManifests } from "../../src/manifests/parse.js";
import { idKey, parseIdKey } from "../../src/manifests/identity.js";
import { FileProblemError, type FileProblem } from "../../src/types.js";

function problemsOf(files: { path: string; content: string }[]): FileProblem[] {
  try {
    parseManifests(files);
  } catch (err) {
    expect(err).toBeInstanceOf(FileProblemError);
    return (err as FileProblemError).problems;
  }
  throw new Error("expected parseManifests to throw");
}

const cm = (name: string, extra = "") => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}`;

describe("parseManifests", () => {
  it("reads multi-document YAML with the source line of each document", () => {
    const content = [
      "# leading comment", // 1
      "---", // 2
      "# about a", // 3
      "apiVersion: v1", // 4
      "kind: ConfigMap", // 5
      "metadata:", // 6
      "  name: a", // 7
      "  namespace: team-a", // 8
      "---", // 9
      "---", // 10  (empty document, skipped)
      "# only a comment", // 11
      "---", // 12
      "apiVersion: apps/v1", // 13
      "kind: Deployment", // 14
      "metadata: {name: web}", // 15
      "spec: {replicas: 2}", // 16
    ].join("\n");
    const ms = parseManifests([{ path: "apps/all.yaml", content }]);
    expect(ms.map((m) => [m.object.kind, m.object.metadata.name, m.source])).toEqual([
      ["ConfigMap", "a", { file: "apps/all.yaml", line: 4 }],
      ["Deployment", "web", { file: "apps/all.yaml", line: 13 }],
    ]);
    expect(ms[0]!.object.metadata.namespace).toBe("team-a");
    expect(ms[1]!.object.spec).toEqual({ replicas: 2 });
  });

  it("reports missing apiVersion, kind and metadata.name with file, line and field", () => {
    const content = [
      "kind: ConfigMap", // 1: no apiVersion
      "metadata: {name: a}",
      "---",
      "apiVersion: v1", // 4: no kind
      "metadata: {name: b}",
      "---",
      "apiVersion: v1", // 7
      "kind: ConfigMap",
      "metadata:", // 9: no name
      "  labels: {x: y}",
    ].join("\n");
    const ps = problemsOf([{ path: "bad.yaml", content }]);
    expect(ps).toEqual([
      expect.objectContaining({ file: "bad.yaml", line: 1, field: "apiVersion" }),
      expect.objectContaining({ file: "bad.yaml", line: 4, field: "kind" }),
      expect.objectContaining({ file: "bad.yaml", line: 9, field: "metadata.name" }),
    ]);
  });

  it("refuses wrongly typed fields, bad names and bad namespaces at the offending line", () => {
    const content = [
      "apiVersion: 1", // 1: number
      "kind: ConfigMap",
      "metadata:",
      "  name: a/b", // 4
      "  namespace: Team_A", // 5
    ].join("\n");
    const ps = problemsOf([{ path: "x.yaml", content }]);
    expect(ps.map((p) => [p.line, p.field])).toEqual([
      [1, "apiVersion"],
      [4, "metadata.name"],
      [5, "metadata.namespace"],
    ]);
  });

  it("collects problems from all files before throwing", () => {
    let err: unknown;
    try {
      parseManifests([
        { path: "a.yaml", content: cm("ok") },
        { path: "b.yaml", content: "kind: ConfigMap\nmetadata: {name: b}\n" },
        { path: "c.yml", content: "- not\n- a mapping\n" },
        { path: "d.yaml", content: "key: [unclosed\n" },
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileProblemError);
    const ps = (err as FileProblemError).problems;
    expect(new Set(ps.map((p) => p.file))).toEqual(new Set(["b.yaml", "c.yml", "d.yaml"]));
    expect(ps.find((p) => p.file === "b.yaml")).toMatchObject({ line: 1, field: "apiVersion" });
    expect(ps.find((p) => p.file === "c.yml")).toMatchObject({ line: 1 });
    // The message lists every problem as file:line.
    expect((err as Error).message).toMatch(/b\.yaml:1: apiVersion/);
    expect((err as Error).message).toMatch(/c\.yml:1/);
    expect((err as Error).message).toMatch(/d\.yaml:\d+/);
  });

  it("refuses an alias bomb but accepts ordinary anchors", () => {
    const bomb = [
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: lol}",
      "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]",
      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]",
    ].join("\n");
    const ps = problemsOf([{ path: "bomb.yaml", content: bomb }]);
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ file: "bomb.yaml", line: 1 });
    expect(ps[0]!.message).toMatch(/alias/i);

    const ok = parseManifests([
      { path: "ok.yaml", content: cm("x", "data: &d {a: '1'}\nbinaryData: {}\nextra: *d\n") },
    ]);
    expect(ok[0]!.object.extra).toEqual({ a: "1" });
  });

  it("refuses duplicate keys", () => {
    const ps = problemsOf([
      { path: "dup.yaml", content: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n" },
    ]);
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ file: "dup.yaml", line: 5 });
    expect(ps[0]!.message).toMatch(/mapping key "name" already defined at line 4/);
  });

  it("expands kind: List into its items, each with its own line", () => {
    const content = [
      "apiVersion: v1", // 1
      "kind: List",
      "items:",
      "- apiVersion: v1", // 4
      "  kind: ConfigMap",
      "  metadata: {name: one}",
      "- apiVersion: v1", // 7
      "  kind: Secret",
      "  metadata: {name: two, namespace: ns}",
    ].join("\n");
    const ms = parseManifests([{ path: "list.yaml", content }]);
    expect(ms.map((m) => [m.object.kind, m.object.metadata.name, m.source.line])).toEqual([
      ["ConfigMap", "one", 4],
      ["Secret", "two", 7],
    ]);
    const ps = problemsOf([{ path: "list.yaml", content: content.replace("  metadata: {name: one}", "  metadata: {}") }]);
    expect(ps).toEqual([expect.objectContaining({ line: 6, field: "items[0].metadata.name" })]);
    const nested = problemsOf([{ path: "n.yaml", content: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n" }]);
    expect(nested).toEqual([expect.objectContaining({ file: "n.yaml", line: 4 })]);
    expect(nested[0]!.message).toMatch(/List inside a List/);
  });

  it("reads JSON files, and ignores files with other extensions", () => {
    const json = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "j" }, data: { mode: "0644" } }, null, 2);
    const ms = parseManifests([
      { path: "cm.json", content: json },
      { path: "README.md", content: "# not a manifest: [" },
      { path: "notes.YAML.txt", content: "garbage: [" },
    ]);
    expect(ms).toHaveLength(1);
    expect(ms[0]!.object.data).toEqual({ mode: "0644" });
    expect(ms[0]!.source).toEqual({ file: "cm.json", line: 1 });
    const ps = problemsOf([{ path: "bad.json", content: '{\n  "apiVersion": "v1",\n  "kind": "ConfigMap"\n}' }]);
    expect(ps).toEqual([expect.objectContaining({ file: "bad.json", line: 1, field: "metadata.name" })]);
  });

  it("reads YAML like kubectl: 0644 is octal, timestamps stay strings", () => {
    const ms = parseManifests([
      { path: "a.yaml", content: cm("a", "spec:\n  defaultMode: 0644\n  when: 2001-12-14\n  port: 8080\n") },
    ]);
    expect(ms[0]!.object.spec).toEqual({ defaultMode: 420, when: "2001-12-14", port: 8080 });
  });
});

describe("identity", () => {
  it("builds keys without the version and parses them back", () => {
    const id = { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name: "web" };
    expect(idKey(id)).toBe("apps/Deployment/prod/web");
    expect(parseIdKey("apps/Deployment/prod/web")).toEqual({ group: "apps", kind: "Deployment", namespace: "prod", name: "web" });
    expect(idKey({ group: "", kind: "Namespace", namespace: "", name: "prod" })).toBe("/Namespace//prod");
    expect(parseIdKey("/Namespace//prod")).toEqual({ group: "", kind: "Namespace", namespace: "", name: "prod" });
    expect(idKey({ ...id, version: "v1beta1" })).toBe(idKey(id));
    expect(() => parseIdKey("apps/Deployment/web")).toThrow(/invalid object key/);
  });
});
