// The contested-field backoff as pure logic: one review per drift check, an injected clock.
import { describe, expect, it } from "vitest";
import { CONTEST_CAP_MS, ContestBackoff, contestingManagersOf, describeKey, parseContested, writersSinceApply } from "../../src/reconcile/contested.js";
import { contestEvent } from "../../src/service/events.js";

const KEY = "apps/Deployment/ci/web";
const OTHER = "/ConfigMap/ci/cfg";

/** A manager that takes the field back after every repair; returns the check numbers (1-based) at which plumber repaired. */
function war(checks: number, opts: { now?: () => number; tick?: () => void; dh?: (check: number) => string } = {}): { repairs: number[]; b: ContestBackoff } {
  const b = new ContestBackoff({ now: opts.now });
  const repairs: number[] = [];
  for (let i = 1; i <= checks; i++) {
    const v = b.review([KEY], new Map([[KEY, ["hpa-like"]]]), new Map([[KEY, opts.dh?.(i) ?? "h1"]]));
    if (v.repair.includes(KEY)) repairs.push(i);
    opts.tick?.();
  }
  return { repairs, b };
}

describe("ContestBackoff", () => {
  it("repairs a first drift at once, and forgets it when it stays repaired", () => {
    const b = new ContestBackoff({ now: () => 0 });
    expect(b.review([KEY], new Map(), new Map([[KEY, "h1"]]))).toEqual({ repair: [KEY], deferred: [], notices: [] });
    // In place at the next check: no contest, nothing to say.
    expect(b.review([], new Map(), new Map([[KEY, "h1"]]))).toEqual({ repair: [], deferred: [], notices: [] });
    expect(b.contested()).toEqual([]);
    // A later one-off drift is again repaired at once.
    expect(b.review([KEY], new Map(), new Map([[KEY, "h1"]])).repair).toEqual([KEY]);
  });

  it("backs off exponentially while another manager keeps taking the object back: 2, 4, 8 … checks", () => {
    const { repairs, b } = war(64, { now: () => 0 });
    expect(repairs).toEqual([1, 3, 7, 15, 31, 63]);
    expect(b.contested()).toEqual([{ key: KEY, managers: ["hpa-like"], strikes: 6 }]);
  });

  it("names the managers when the object is taken back, with the checks until the next repair", () => {
    const b = new ContestBackoff({ now: () => 0 });
    const dh = new Map([[KEY, "h1"]]);
    const who = new Map([[KEY, ["hpa-like", "kubectl-edit"]]]);
    b.review([KEY], new Map(), dh);
    const v = b.review([KEY], who, dh);
    expect(v).toEqual({ repair: [], deferred: [KEY], notices: [{ kind: "contested", key: KEY, managers: ["hpa-like", "kubectl-edit"], strikes: 1, nextInChecks: 1 }] });
    // Deferred checks say nothing more.
    expect(b.review([KEY], who, dh)).toEqual({ repair: [KEY], deferred: [], notices: [] });
    expect(b.review([KEY], who, dh).notices).toEqual([{ kind: "contested", key: KEY, managers: ["hpa-like", "kubectl-edit"], strikes: 2, nextInChecks: 3 }]);
  });

  it("caps the wait at an hour (by the clock), however many strikes", () => {
    let now = 0;
    const { repairs } = war(40, { now: () => now, tick: () => (now += 10 * 60_000) });
    // Checks 10 min apart: 1, 3 (20 min), 7 (40 min), then every 6 checks (1 h), never 8 or 16 apart.
    expect(repairs).toEqual([1, 3, 7, 13, 19, 25, 31, 37]);
    expect(CONTEST_CAP_MS).toBe(3_600_000);
  });

  it("starts over when git changes the object (a new manifest hash)", () => {
    const { repairs } = war(12, { now: () => 0, dh: (i) => (i <= 7 ? "h1" : "h2") });
    // 1, 3, 7 under h1; at 8 the object is new to the backoff: repaired at once, then 10, …
    expect(repairs).toEqual([1, 3, 7, 8, 10]);
  });

  it("says when the contest is over, and backs off per object", () => {
    const b = new ContestBackoff({ now: () => 0 });
    const dh = new Map([[KEY, "h1"], [OTHER, "h2"]]);
    b.review([KEY], new Map(), dh);
    b.review([KEY], new Map([[KEY, ["hpa-like"]]]), dh); // contested, deferred
    // Another object drifts for the first time: repaired at once, whatever KEY's backoff.
    const v = b.review([KEY, OTHER], new Map([[KEY, ["hpa-like"]]]), dh);
    expect(v.repair.sort()).toEqual([KEY, OTHER].sort());
    // KEY stays in place after its repair: resolved.
    const w = b.review([], new Map(), dh);
    expect(w.notices).toEqual([{ kind: "resolved", key: KEY, managers: ["hpa-like"], strikes: 1 }]);
    expect(b.contested()).toEqual([]);
  });
});

describe("contested: messages", () => {
  it("describes objects and parses the status key", () => {
    expect(describeKey(KEY)).toBe("apps/Deployment ci/web");
    expect(describeKey(OTHER)).toBe("ConfigMap ci/cfg");
    expect(parseContested('[{"object":"ConfigMap ci/cfg","managers":["hpa-like"]}]')).toEqual([{ object: "ConfigMap ci/cfg", managers: ["hpa-like"] }]);
    expect(parseContested("not json")).toEqual([]);
    expect(parseContested(undefined)).toEqual([]);
  });

  it("makes a Warning naming the manager, and a Normal event when it ends", () => {
    const ev = contestEvent("tasks", { kind: "contested", key: OTHER, managers: ["hpa-like"], strikes: 2, nextInChecks: 3 });
    expect(ev).toMatchObject({ app: "tasks", type: "Warning", reason: "FieldsContested" });
    expect(ev.note).toBe('ConfigMap ci/cfg: fields plumber applied were taken back by "hpa-like" after its repair (2 times in a row); plumber repairs it with backoff, next in 3 drift checks (at most 1h)');
    expect(contestEvent("tasks", { kind: "resolved", key: OTHER, managers: ["hpa-like"], strikes: 2 })).toEqual({ app: "tasks", type: "Normal", reason: "ContestResolved", note: 'ConfigMap ci/cfg: no longer contested by "hpa-like"' });
  });
});

describe("writersSinceApply", () => {
  const obj = (entries: Array<Record<string, unknown>>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg", managedFields: entries } });

  it("names writers in the same second as plumber's apply or later (managedFields times are whole seconds)", () => {
    const o = obj([
      { manager: "kubectl-create", operation: "Update", time: "2026-12-01T11:59:59Z", fieldsV1: {} },
      { manager: "plumber", operation: "Apply", time: "2026-12-01T12:00:00Z", fieldsV1: {} },
      { manager: "hpa-like", operation: "Update", time: "2026-12-01T12:00:00Z", fieldsV1: {} },
      { manager: "kubelet", operation: "Update", subresource: "status", time: "2026-12-01T12:00:05Z", fieldsV1: {} },
    ]);
    expect(writersSinceApply(o, "plumber")).toEqual(["hpa-like"]);
    expect(writersSinceApply(obj([{ manager: "x", operation: "Update", time: "2026-12-01T12:00:00Z" }]), "plumber")).toEqual([]);
  });

  it("completes the engine's report only where it names no one", () => {
    const o = obj([
      { manager: "plumber", operation: "Apply", time: "2026-12-01T12:00:00Z" },
      { manager: "hpa-like", operation: "Update", time: "2026-12-01T12:00:00Z" },
    ]);
    const live = new Map([[KEY, o as never], [OTHER, o as never]]);
    const who = contestingManagersOf({ drifted: [KEY, OTHER], live, contested: new Map([[OTHER, ["operator"]]]) });
    expect(who).toEqual(new Map([[OTHER, ["operator"]], [KEY, ["hpa-like"]]]));
  });
});

describe("ContestTracker: the status note", () => {
  /** A KubeClient stand-in recording requests to the state ConfigMap. */
  function fakeKube(initial?: Record<string, string>) {
    const calls: string[] = [];
    let data = initial;
    const client = {
      async getOptional() {
        calls.push("GET");
        return data ? { data } : undefined;
      },
      async request(req: { method: string; body?: string; query?: Record<string, string> }) {
        calls.push(`${req.method} ${req.query?.fieldManager}`);
        const body = JSON.parse(req.body ?? "{}") as { data?: Record<string, string> };
        data = { ...(body.data ?? {}) };
        return { status: 200, body: {}, headers: {}, warnings: [] };
      },
    };
    return { client: client as unknown as import("../../src/kube/client.js").KubeClient, calls, data: () => data };
  }
  const drift = (drifted: string[], who: string[] = []) => ({ drifted, missing: [], live: new Map(), contested: new Map(drifted.map((k) => [k, who])) });
  const inv = [{ key: KEY, apiVersion: "apps/v1", fp: "f", dh: "h1" }];

  it("costs no request while nothing drifts, writes when the contested set changes, and clears it when the contest ends", async () => {
    const { ContestTracker } = await import("../../src/reconcile/contested.js");
    const { silentLogger } = await import("../../src/log.js");
    const k = fakeKube({ revision: "abc" });
    const t = new ContestTracker({ now: () => 0 });
    const ctx = { app: "tasks", client: k.client, namespace: "plumber", log: silentLogger() };
    for (let i = 0; i < 3; i++) await t.review(drift([]), inv, ctx);
    expect(k.calls).toEqual([]);
    // First drift: repaired, the note read once (nothing to change).
    expect((await t.review(drift([KEY]), inv, ctx)).drifted).toEqual([KEY]);
    expect(k.calls).toEqual(["GET"]);
    // Taken back: deferred, and the note says who — one write.
    expect((await t.review(drift([KEY], ["hpa-like"]), inv, ctx)).drifted).toEqual([]);
    expect(k.calls).toEqual(["GET", "PATCH plumber-contest"]);
    expect(parseContested(k.data()?.contested)).toEqual([{ object: "apps/Deployment ci/web", managers: ["hpa-like"] }]);
    // Repaired and taken back again: same set, no write.
    await t.review(drift([KEY], ["hpa-like"]), inv, ctx);
    await t.review(drift([KEY], ["hpa-like"]), inv, ctx);
    expect(k.calls).toHaveLength(2);
    const drained = t.drain();
    expect(drained.notices.map((n) => [n.kind, n.strikes])).toEqual([["contested", 1], ["contested", 2]]);
    expect(drained).toMatchObject({ contested: 1 });
    expect(drained.deferred).toBeGreaterThanOrEqual(2);
    // It stays in place: resolved, the key removed with one write.
    for (let i = 0; i < 4; i++) await t.review(drift([KEY], ["hpa-like"]), inv, ctx);
    await t.review(drift([]), inv, ctx);
    expect(k.calls.filter((c) => c !== "GET")).toEqual(["PATCH plumber-contest", "PATCH plumber-contest"]);
    expect(k.data()?.contested).toBeUndefined();
    expect(t.drain().notices.at(-1)).toMatchObject({ kind: "resolved", managers: ["hpa-like"] });
  });

  it("corrects a note left by an earlier process at the first drift", async () => {
    const { ContestTracker } = await import("../../src/reconcile/contested.js");
    const { silentLogger } = await import("../../src/log.js");
    const k = fakeKube({ contested: '[{"object":"ConfigMap ci/old","managers":["x"]}]' });
    const t = new ContestTracker({ now: () => 0 });
    await t.review(drift([KEY]), inv, { app: "tasks", client: k.client, namespace: "plumber", log: silentLogger() });
    expect(k.calls).toEqual(["GET", "PATCH plumber-contest"]);
    expect(k.data()?.contested).toBeUndefined();
  });
});
