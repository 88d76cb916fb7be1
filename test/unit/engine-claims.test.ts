import { describe, expect, it } from "vitest";
import { ClaimTable, ownedByOther, preconditionFor } from "../../src/engine/claims.js";
import { withMarks } from "../../src/engine/marks.js";
import type { KubeObject } from "../../src/types.js";

const live = (labels?: Record<string, string>, resourceVersion = "42"): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "n", resourceVersion, ...(labels ? { labels } : {}) } });

describe("ClaimTable", () => {
  it("refuses a key another owner holds, naming it, and takes the rest", () => {
    const t = new ClaimTable();
    const a = t.take("a", ["k1", "k2"]);
    expect(a.refused.size).toBe(0);
    const b = t.take("b", ["k2", "k3"]);
    expect([...b.refused]).toEqual([["k2", "a"]]);
    // b holds k3 now.
    expect([...t.take("c", ["k3"]).refused]).toEqual([["k3", "b"]]);
  });

  it("frees exactly the keys a claim took, once, and lets the same owner take a key twice", () => {
    const t = new ClaimTable();
    const a = t.take("a", ["k1"]);
    const again = t.take("a", ["k1", "k2"]);
    expect(again.refused.size).toBe(0);
    a.release();
    a.release();
    // k1 was taken by the first claim only: free now; k2 is still the second claim's.
    expect(t.take("b", ["k1"]).refused.size).toBe(0);
    expect([...t.take("b", ["k2"]).refused]).toEqual([["k2", "a"]]);
    again.release();
    expect(t.take("c", ["k2"]).refused.size).toBe(0);
  });

  it("a released claim does not free a key another owner took since", () => {
    const t = new ClaimTable();
    const a = t.take("a", ["k"]);
    a.release();
    t.take("b", ["k"]);
    a.release();
    expect([...t.take("c", ["k"]).refused]).toEqual([["k", "b"]]);
  });
});

describe("preconditionFor", () => {
  it("nothing there: the write is to create; this app's object: none; anyone else's or nobody's: the resourceVersion read", () => {
    expect(preconditionFor(undefined, "a")).toEqual({ create: true });
    expect(preconditionFor(withMarks(live(), "a"), "a")).toBeUndefined();
    expect(preconditionFor(withMarks(live(undefined, "7"), "b"), "a")).toEqual({ resourceVersion: "7", create: false });
    expect(preconditionFor(live(), "a")).toEqual({ resourceVersion: "42", create: false });
    // Its namespace or kind is new in the revision: not looked at, so nothing to hold it to.
    expect(preconditionFor(undefined, "a", false)).toBeUndefined();
  });
});

describe("ownedByOther", () => {
  it("is the ordinary refusal, or says an adoption waits for the holder's write", () => {
    expect(ownedByOther("ConfigMap/n/c", "a", "b", false)).toBe(
      `ConfigMap/n/c belongs to plumber app "a"; app "b" may not take it (set the annotation plumber.dev/adopt: enabled in "b"'s manifest to adopt it)`,
    );
    expect(ownedByOther("ConfigMap/n/c", "a", "b", true)).toContain(`app "b" adopts it on a later try`);
  });
});
