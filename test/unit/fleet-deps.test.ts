import { describe, expect, it } from "vitest";
import { dependencyBlocker, dependencyOrder } from "../../src/deps/graph.js";
import { findCycle } from "../../src/util/graph.js";

const A = "a".repeat(40);
const B = "b".repeat(40);

describe("dependsOn", () => {
  it("finds cycles and orders dependencies first", () => {
    expect(findCycle(new Map([["x", ["y"]], ["y", []]]))).toBeUndefined();
    expect(findCycle(new Map([["x", ["x"]]]))).toEqual(["x", "x"]);
    const items = [{ n: "app", d: ["crds"] }, { n: "other", d: [] }, { n: "crds", d: ["ns"] }, { n: "ns", d: [] }];
    expect(dependencyOrder(items, (i) => i.n, (i) => i.d).map((i) => i.n)).toEqual(["ns", "crds", "app", "other"]);
  });
  it("healthy means Ready at its good revision and at its head", () => {
    const ready = { app: "d", revision: A, goodRevision: A, phase: "Ready" as const, inventory: [], history: [] };
    expect(dependencyBlocker("d", { state: ready, head: A })).toBeUndefined();
    expect(dependencyBlocker("d", { state: ready })).toBeUndefined();
    expect(dependencyBlocker("d", {})).toBe("dependency d has not been deployed yet");
    expect(dependencyBlocker("d", { state: ready, head: B })).toContain("dependency d is not yet at bbbbbbbbbbbb");
    expect(dependencyBlocker("d", { state: { ...ready, failedRevision: B, message: "bad yaml" }, head: B })).toBe("dependency d failed at bbbbbbbbbbbb: bad yaml");
    expect(dependencyBlocker("d", { state: { ...ready, phase: "Verifying", verifyStartedAt: "2026-03-10T10:00:00.000Z" } })).toContain("not healthy yet");
  });
});
