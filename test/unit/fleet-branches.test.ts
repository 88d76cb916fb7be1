import { describe, expect, it } from "vitest";
import { resolveBranch } from "../../src/branches/resolve.js";

const heads = (...names: string[]) => new Map(names.map((n, i) => [n, String(i).padStart(40, "a")]));

describe("branch patterns", () => {
  it("a plain branch is looked up as is", () => {
    expect(resolveBranch({ branch: "main" }, heads("main", "dev"))).toEqual({ branch: "main", head: "0".padStart(40, "a") });
    expect(resolveBranch({ branch: "gone" }, heads("main"))).toEqual({ branch: "gone", head: undefined });
  });
  it("highestSemver picks the newest matching branch, numerically, releases over pre-releases", () => {
    const h = heads("main", "release-v1.9", "release-v1.10", "release-v1.10-rc.1", "release-v2.0-rc.2", "release-vnext", "other-v9.0");
    expect(resolveBranch({ branch: "release-v*", branchPattern: "release-v*" }, h).branch).toBe("release-v2.0-rc.2");
    expect(resolveBranch({ branch: "release-v1.*", branchPattern: "release-v1.*" }, h).branch).toBe("release-v1.10");
    expect(resolveBranch({ branch: "release-v1.?", branchPattern: "release-v1.?" }, h).branch).toBe("release-v1.9");
    expect(resolveBranch({ branch: "x-*", branchPattern: "x-*" }, h)).toEqual({});
  });
});
