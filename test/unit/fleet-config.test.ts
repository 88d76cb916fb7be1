import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { configProblems } from "./config-problems.js";

const cfg = (app: string[]) =>
  ["clusters:", "  - name: prod", "repos:", "  - name: r", "    url: https://git.example.com/r.git", "    interval: 1m", "apps:", "  - name: a", "    repo: r", "    path: .", "    cluster: prod", "    namespace: ci", ...app.map((l) => `    ${l}`)].join("\n");

const problems = configProblems;

describe("fleet config", () => {
  it("branchPattern instead of branch, with highestSemver by default", () => {
    const c = parseConfig(cfg(["branchPattern: release-v*"]), "c.yaml");
    expect(c.apps[0]).toMatchObject({ branch: "release-v*", branchPattern: "release-v*", branchPolicy: "highestSemver" });
    expect(parseConfig(cfg(["branch: main"]), "c.yaml").apps[0]).not.toHaveProperty("branchPattern");
  });
  it("exactly one of branch or branchPattern", () => {
    expect(problems(cfg(["branch: main", "branchPattern: release-*"])).join("\n")).toContain("set exactly one of branch or branchPattern");
    expect(problems(cfg([]))).toEqual(["c.yaml:8:5: apps[0].branch: required field is missing"]);
  });
  it("namespace policy fields", () => {
    const c = parseConfig(cfg(["branch: main", "targetNamespace: ci", "allowedNamespaces: [ci, tools]", "allowClusterScoped: false"]), "c.yaml");
    expect(c.apps[0]).toMatchObject({ targetNamespace: "ci", allowedNamespaces: ["ci", "tools"], allowClusterScoped: false });
    expect(problems(cfg(["branch: main", "targetNamespace: ci", "allowedNamespaces: [tools]"]))).toEqual(['c.yaml:14:22: apps[0].targetNamespace: "ci" is not in allowedNamespaces']);
  });
  it("dependsOn: unknown apps and cycles are errors, the cycle named in full", () => {
    const three = [
      "clusters:", "  - name: prod", "repos:", "  - name: r", "    url: https://git.example.com/r.git", "    interval: 1m", "apps:",
      "  - { name: a, repo: r, branch: main, path: a, cluster: prod, namespace: ci, dependsOn: [b] }",
      "  - { name: b, repo: r, branch: main, path: b, cluster: prod, namespace: ci, dependsOn: [c, nope] }",
      "  - { name: c, repo: r, branch: main, path: c, cluster: prod, namespace: ci, dependsOn: [a] }",
    ].join("\n");
    expect(problems(three)).toEqual(["c.yaml:8:90: apps[0].dependsOn[0]: dependency cycle: a → b → c → a", 'c.yaml:9:93: apps[1].dependsOn[1]: no app named "nope"']);
    expect(parseConfig(three.replace("dependsOn: [a]", "dependsOn: []").replace(", nope", ""), "c.yaml").apps.map((a) => a.dependsOn)).toEqual([["b"], ["c"], []]);
  });
});
