import { describe, expect, it } from "vitest";
import { checkRemoteBases, isRemoteEntry } from "../../src/kustomize/render.js";

describe("kustomize remote bases", () => {
  it("recognizes remote entries", () => {
    for (const e of ["https://example.com/x.yaml", "http://x/y", "git@github.com:org/repo.git", "github.com/org/repo//dir?ref=v1", "ssh://git@h/r", "../base?ref=main"]) expect(isRemoteEntry(e)).toBe(true);
    for (const e of ["../base", "deploy.yaml", "sub/dir", "./a.yaml"]) expect(isRemoteEntry(e)).toBe(false);
  });
  it("follows local bases and names the file, line and entry", () => {
    const files = new Map([
      ["app/kustomization.yaml", "resources:\n  - ../base\n  - local.yaml\n"],
      ["base/kustomization.yml", "bases:\n  - ok.yaml\ncomponents:\n  - git@github.com:o/r.git\n"],
    ]);
    expect(checkRemoteBases(files, "app/kustomization.yaml")).toEqual([
      { file: "base/kustomization.yml", line: 4, field: "components", message: expect.stringContaining('remote base "git@github.com:o/r.git" is refused') },
    ]);
  });
});
