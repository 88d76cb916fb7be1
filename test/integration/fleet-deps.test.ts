// dependsOn: a dependent applies only after its dependencies are healthy at their current revision.
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { configMap, getObject } from "./support.js";
import { fleet, type Fleet } from "./fleet-support.js";

const open: Fleet[] = [];
afterEach(() => {
  for (const f of open.splice(0)) f.close();
});

const unknownKind = stringify({ apiVersion: "example.dev/v1", kind: "Nope", metadata: { name: "x" } });

describe("dependsOn", () => {
  it("applies dependencies first, holds dependents on a failed dependency with status naming it, resumes when it is fixed", async () => {
    // The dependent comes first in the config: plumber orders the cycle by dependencies.
    const f = await fleet(
      { "base/cm.yaml": configMap("base", { v: "1" }), "app/cm.yaml": configMap("app", { v: "1" }) },
      { app: { path: "app", dependsOn: ["base"] }, base: { path: "base" } },
    );
    open.push(f);
    const cm = (key: string) => getObject(f.kube, `/api/v1/namespaces/${f.apps[key]!.namespace}/configmaps/${key}`);
    const baseName = f.apps.base!.name;

    let res = await f.cycle();
    expect(res.base?.kind).toBe("applied");
    expect(res.app?.kind).toBe("applied");

    // the dependency's new revision fails: the dependent's new revision waits, naming it
    const bad = await f.repo.commit({ "base/bad.yaml": unknownKind, "app/cm.yaml": configMap("app", { v: "2" }) }, "bad base");
    res = await f.cycle();
    expect(res.base).toMatchObject({ kind: "failed", permanent: true });
    expect(res.app).toMatchObject({ kind: "held", message: expect.stringContaining(`dependency ${baseName} failed at ${bad.slice(0, 12)}`) });
    expect((await cm("app"))?.data).toEqual({ v: "1" });
    const st = await f.state("app");
    expect(st?.pendingRevision).toBe(bad);
    expect(st?.message).toContain(`waits: dependency ${baseName} failed`);
    // held, drift still repaired
    await f.kube.request({ method: "DELETE", path: `/api/v1/namespaces/${f.apps.app!.namespace}/configmaps/app` });
    expect((await f.cycle()).app?.kind).toBe("repaired");
    expect((await cm("app"))?.data).toEqual({ v: "1" });
    expect((await f.cycle()).app?.kind).toBe("held");

    // fixed: both move in one cycle, the dependency first
    const good = await f.repo.commit({ "base/bad.yaml": configMap("extra", { v: "1" }) }, "fix base");
    res = await f.cycle();
    expect(res.base).toMatchObject({ kind: "applied", revision: good });
    expect(res.app).toMatchObject({ kind: "applied", revision: good });
    expect((await cm("app"))?.data).toEqual({ v: "2" });
  });
});
