// plumber's own config, deployed from git, is validated before it is applied.
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { checkSelfConfig } from "../../src/config/selfconfig.js";
import type { Manifest } from "../../src/types.js";

const valid = stringify({
  clusters: [{ name: "local" }],
  repos: [{ name: "plumbing", url: "https://git.example.com/plumbing.git", interval: "1m", auth: { tokenFile: "/etc/plumber/git/token" } }],
  apps: [{ name: "plumber", repo: "plumbing", branch: "main", path: "deploy", cluster: "local", namespace: "plumber" }],
});

function cm(data: Record<string, string> | undefined, annotated = true): Manifest {
  return {
    object: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "plumber-config", namespace: "plumber", ...(annotated ? { annotations: { "plumber.dev/config": "true" } } : {}) },
      ...(data ? { data } : {}),
    },
    source: { file: "deploy/config.yaml", line: 3 },
  };
}

describe("self-config guard", () => {
  it("passes a valid config and ConfigMaps without the annotation", () => {
    expect(checkSelfConfig([cm({ "plumber.yaml": valid })])).toEqual([]);
    expect(checkSelfConfig([cm({ "plumber.yaml": "not: [valid" }, false)])).toEqual([]);
  });

  it("refuses an invalid config, naming the manifest and the config's own file:line problems", () => {
    const bad = valid.replace("repo: plumbing", "repo: nowhere").replace("interval: 1m", "interval: soon");
    const problems = checkSelfConfig([cm({ "plumber.yaml": bad })]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: "deploy/config.yaml", line: 3 });
    expect(problems[0]?.message).toMatch(/ConfigMap plumber\/plumber-config .*plumber\.yaml is not a valid plumber config; refusing to apply it to plumber itself/);
    expect(problems[0]?.message).toMatch(/plumber\.yaml:\d+:\d+: .*interval/);
    expect(problems[0]?.message).toMatch(/nowhere/);
  });

  it("refuses an annotated ConfigMap without the plumber.yaml key", () => {
    expect(checkSelfConfig([cm({ other: "x" })])[0]?.message).toMatch(/has no plumber\.yaml key/);
  });
});
