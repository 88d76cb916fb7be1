import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { configProblems } from "./config-problems.js";

const head = ["clusters:", "  - name: nightly", "  - name: prod", "repos:", "  - name: r", "    url: https://git.example.com/r.git", "    interval: 1m", "  - name: other", "    url: https://git.example.com/o.git", "    interval: 1m", "apps:"];
const cfg = (...apps: string[]) => [...head, ...apps.map((a) => `  - ${a}`)].join("\n");
const nightly = "{ name: nightly, repo: r, branch: main, path: overlays/nightly, cluster: nightly, namespace: ci }";

const problems = configProblems;

describe("promote config", () => {
  it("an app follows another: repo and branch come from the source, soak parsed, defaulting to 0", () => {
    const c = parseConfig(cfg(nightly, "{ name: prod, promote: { from: nightly, soak: 24h }, path: overlays/prod, cluster: prod, namespace: ci, approval: manual }"), "c.yaml");
    expect(c.apps[1]).toMatchObject({ name: "prod", repo: "r", branch: "main", promote: { from: "nightly", soakMs: 24 * 3_600_000 }, path: "overlays/prod", approval: "manual" });
    expect(c.apps[1]).not.toHaveProperty("branchPattern");
    const d = parseConfig(cfg(nightly, "{ name: prod, promote: { from: nightly }, path: p, cluster: prod, namespace: ci }"), "c.yaml");
    expect(d.apps[1]?.promote).toEqual({ from: "nightly", soakMs: 0 });
  });

  it("chains take the first app's repo and branch (pattern), and may name that repo", () => {
    const c = parseConfig(
      cfg(
        "{ name: dev, repo: r, branchPattern: release-*, path: dev, cluster: nightly, namespace: ci }",
        "{ name: nightly, promote: { from: dev, soak: 1h }, path: n, cluster: nightly, namespace: ci2 }",
        "{ name: prod, repo: r, promote: { from: nightly, soak: 24h }, path: p, cluster: prod, namespace: ci }",
      ),
      "c.yaml",
    );
    expect(c.apps.map((a) => [a.name, a.repo, a.branch, a.promote?.from])).toEqual([
      ["dev", "r", "release-*", undefined],
      ["nightly", "r", "release-*", "dev"],
      ["prod", "r", "release-*", "nightly"],
    ]);
  });

  it("exactly one of branch, branchPattern or promote, at the field", () => {
    expect(problems(cfg(nightly, "{ name: prod, branch: main, promote: { from: nightly }, path: p, cluster: prod, namespace: ci }"))).toEqual([
      "c.yaml:13:33: apps[1].promote: set exactly one of branch, branchPattern or promote (branch and promote are set)",
    ]);
    expect(problems(cfg(nightly, "{ name: prod, path: p, cluster: prod, namespace: ci }"))).toEqual([
      "c.yaml:13:5: apps[1].branch: required field is missing",
      "c.yaml:13:5: apps[1].repo: required field is missing",
    ]);
  });

  it("promote.from names a known app; repo, when set, is the source's", () => {
    expect(problems(cfg(nightly, "{ name: prod, promote: { from: nightlyy }, path: p, cluster: prod, namespace: ci }"))).toEqual([
      'c.yaml:13:36: apps[1].promote.from: no app named "nightlyy" (known: "nightly")',
    ]);
    expect(problems(cfg(nightly, "{ name: prod, repo: other, promote: { from: nightly }, path: p, cluster: prod, namespace: ci }"))).toEqual([
      'c.yaml:13:25: apps[1].repo: must be the repo of app "nightly" ("r"), which this app is promoted from: a promoted revision is a commit of that repo (or leave repo out)',
    ]);
    expect(problems(cfg(nightly, "{ name: prod, promote: { from: nightly, soak: 5d }, path: p, cluster: prod, namespace: ci }"))).toEqual([
      "c.yaml:13:51: apps[1].promote.soak: must be a duration such as 30s, 5m, 1h or 1m30s (units: ms, s, m, h)",
    ]);
    expect(problems(cfg(nightly, "{ name: prod, promote: { from: nightly, after: 1h }, path: p, cluster: prod, namespace: ci }")).join("\n")).toContain("apps[1].promote.after");
  });

  it("a cycle through promote.from, alone or with dependsOn, is named in full", () => {
    expect(problems(cfg("{ name: a, promote: { from: b }, path: a, cluster: prod, namespace: ci }", "{ name: b, promote: { from: a }, path: b, cluster: prod, namespace: ci }"))).toEqual([
      "c.yaml:12:33: apps[0].promote.from: promotion cycle: a → b → a",
    ]);
    expect(problems(cfg("{ name: a, promote: { from: a }, path: a, cluster: prod, namespace: ci }"))).toEqual(["c.yaml:12:33: apps[0].promote.from: promotion cycle: a → a"]);
    expect(
      problems(cfg(nightly, "{ name: prod, promote: { from: nightly }, path: p, cluster: prod, namespace: ci }", "{ name: x, repo: r, branch: main, path: x, cluster: nightly, namespace: ci, dependsOn: [prod] }").replace("namespace: ci }", "namespace: ci, dependsOn: [x] }")),
    ).toEqual(["c.yaml:12:114: apps[0].dependsOn[0]: cycle through dependsOn and promote.from: nightly → x → prod → nightly"]);
  });

  it("a release may take its revision from a promoted app (the chain's repo and branch)", () => {
    const text = [
      cfg(nightly, "{ name: prod, promote: { from: nightly }, path: p, cluster: prod, namespace: ci }"),
      "releases:",
      "  - { name: rel, schedule: '@daily', repo: r, branch: main, cluster: prod, namespace: ci, template: { path: release.yaml }, revision: { deployedTo: prod, olderThan: 0s } }",
    ].join("\n");
    expect(problems(text)).toEqual([]);
    expect(parseConfig(text, "c.yaml").releases[0]?.revision).toEqual({ kind: "deployedTo", app: "prod", olderThanMs: 0 });
    // TEP-0098: the release's template from another repo than the code it releases.
    const apart = text.replace("repo: r, branch: main, cluster: prod", "repo: other, branch: main, cluster: prod");
    expect(problems(apart)).toEqual([]);
    expect(parseConfig(apart, "c.yaml").releases[0]?.revision).toEqual({ kind: "deployedTo", app: "prod", olderThanMs: 0, repo: "r" });
    // The same repo on another branch than the app's is still refused.
    expect(problems(text.replace("repo: r, branch: main, cluster: prod", "repo: r, branch: dev, cluster: prod")).join("\n")).toContain('app prod follows branch "main", but the release reads branch "dev"');
  });
});
