// Branch patterns: one app follows main, another the newest release branch, from one listing.
import { afterEach, describe, expect, it } from "vitest";
import { getObject, configMap } from "./support.js";
import { fleet, type Fleet } from "./fleet-support.js";

const open: Fleet[] = [];
afterEach(() => {
  for (const f of open.splice(0)) f.close();
});

describe("branch patterns", () => {
  it("main → one app, the newest release-v* → another; a new release branch is picked up", async () => {
    const f = await fleet({ "cm.yaml": configMap("channel", { from: "main" }) }, { dev: {}, rel: { branchPattern: "release-v*" } });
    open.push(f);
    const cm = (key: string) => getObject(f.kube, `/api/v1/namespaces/${f.apps[key]!.namespace}/configmaps/channel`);

    let res = await f.cycle();
    expect(res.dev?.kind).toBe("applied");
    expect(res.rel).toMatchObject({ kind: "failed", message: expect.stringContaining('no branch matches "release-v*"') });

    await f.repo.createBranch("release-v1.9");
    const v19 = await f.repo.commit({ "cm.yaml": configMap("channel", { from: "release-v1.9" }) }, "1.9", { branch: "release-v1.9" });
    await f.repo.createBranch("release-v1.10");
    const v110 = await f.repo.commit({ "cm.yaml": configMap("channel", { from: "release-v1.10" }) }, "1.10", { branch: "release-v1.10" });
    expect(v19).not.toBe(v110);
    res = await f.cycle();
    expect(res.dev?.kind).toBe("unchanged");
    expect(res.rel).toMatchObject({ kind: "applied", revision: v110 });
    expect((await cm("rel"))?.data).toEqual({ from: "release-v1.10" });
    expect((await cm("dev"))?.data).toEqual({ from: "main" });
    const st = await f.state("rel");
    expect(st).toMatchObject({ branch: "release-v1.10", revision: v110 });
    expect((await f.state("dev"))?.branch).toBe("main");

    // a commit to an older release branch does not move the app; a new release branch does
    await f.repo.commit({ "cm.yaml": configMap("channel", { from: "release-v1.9-fix" }) }, "fix", { branch: "release-v1.9" });
    expect((await f.cycle()).rel?.kind).toBe("unchanged");
    await f.repo.createBranch("release-v2.0", "release-v1.10");
    const v2 = await f.repo.commit({ "cm.yaml": configMap("channel", { from: "release-v2.0" }) }, "2.0", { branch: "release-v2.0" });
    res = await f.cycle();
    expect(res.rel).toMatchObject({ kind: "applied", revision: v2 });
    expect((await cm("rel"))?.data).toEqual({ from: "release-v2.0" });
    expect((await f.state("rel"))?.branch).toBe("release-v2.0");
  });
});
