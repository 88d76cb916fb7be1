// resolveResources: the one place two manifests for the same cluster object are refused (before
// anything is written). Identity is group/kind/namespace/name after defaulting and the namespace
// policy, any version.
import { describe, expect, it } from "vitest";
import { resolveResources, type NamespacePolicy } from "../../src/engine/resource.js";
import type { Discovery, ResourceMapping } from "../../src/kube/discovery.js";
import { parseManifests } from "../../src/manifests/parse.js";
import { FileProblemError, type FileProblem, type Manifest } from "../../src/types.js";

const served: ResourceMapping[] = [
  { group: "", version: "v1", kind: "ConfigMap", resource: "configmaps", namespaced: true },
  { group: "", version: "v1", kind: "Namespace", resource: "namespaces", namespaced: false },
  { group: "apps", version: "v1", kind: "Deployment", resource: "deployments", namespaced: true },
  { group: "apps", version: "v1beta2", kind: "Deployment", resource: "deployments", namespaced: true },
];

// Only what resolveResources asks of discovery; the real one needs an apiserver.
const discovery = {
  lookup: (apiVersion: string, kind: string) => {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    return served.find((s) => s.group === group && s.version === version && s.kind === kind);
  },
  hasKind: (group: string, kind: string) => served.some((s) => s.group === group && s.kind === kind),
} as unknown as Discovery;

const doc = (apiVersion: string, kind: string, name: string, namespace?: string) =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata:\n  name: ${name}\n${namespace ? `  namespace: ${namespace}\n` : ""}`;

function problems(manifests: Manifest[], policy?: NamespacePolicy): FileProblem[] {
  try {
    resolveResources(manifests, { owner: "app", defaultNamespace: "prod", discovery, policy });
  } catch (err) {
    expect(err).toBeInstanceOf(FileProblemError);
    return (err as FileProblemError).problems;
  }
  return [];
}

describe("duplicate objects (resolveResources)", () => {
  it("refuses one object defined in two files, at the later one, naming both file:line", () => {
    const ms = parseManifests([
      { path: "a/web.yaml", content: `# web\n${doc("apps/v1", "Deployment", "web")}` },
      { path: "b/more.yaml", content: `${doc("v1", "ConfigMap", "web")}---\n${doc("apps/v1", "Deployment", "web", "prod")}` },
    ]);
    const ps = problems(ms);
    expect(ps).toEqual([
      { file: "b/more.yaml", line: 6, field: "metadata.name", message: "duplicate object Deployment/prod/web: also defined at a/web.yaml:2" },
    ]);
  });

  it("counts another version of the same group and kind as the same object; another namespace or kind is another object", () => {
    const ms = parseManifests([
      { path: "a.yaml", content: doc("apps/v1", "Deployment", "web") },
      { path: "b.yaml", content: doc("apps/v1", "Deployment", "web", "staging") },
      { path: "c.yaml", content: doc("v1", "ConfigMap", "web") },
      { path: "d.yaml", content: doc("apps/v1beta2", "Deployment", "web") },
    ]);
    expect(problems(ms).map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual(["d.yaml:1: duplicate object Deployment/prod/web: also defined at a.yaml:1"]);
  });

  it("identity is taken after targetNamespace: two namespaces forced into one collide", () => {
    const ms = parseManifests([
      { path: "a.yaml", content: doc("v1", "ConfigMap", "cfg", "team-a") },
      { path: "b.yaml", content: doc("v1", "ConfigMap", "cfg", "team-b") },
    ]);
    expect(problems(ms)).toEqual([]);
    expect(problems(ms, { targetNamespace: "prod" }).map((p) => p.message)).toEqual(["duplicate object ConfigMap/prod/cfg: also defined at a.yaml:1"]);
  });

  it("a cluster-scoped object ignores a namespace in its manifest when comparing", () => {
    const ms = parseManifests([
      { path: "a.yaml", content: doc("v1", "Namespace", "team") },
      { path: "b.yaml", content: doc("v1", "Namespace", "team", "somewhere") },
    ]);
    expect(problems(ms).map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual(["b.yaml:1: duplicate object Namespace/team: also defined at a.yaml:1"]);
  });
});
