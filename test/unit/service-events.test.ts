// Event rate limiting and the Event each observed event gets.
import { describe, expect, it } from "vitest";
import type { ObservedEvent } from "../../src/observe/events.js";
import { EventRateLimiter, eventsFor, EventsObserver, type EventRecorder, type PlumberEvent } from "../../src/service/events.js";
import { permissionHint } from "../../src/service/permissions.js";
import { KubeApiError } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";

describe("event rate limiting", () => {
  it("drops an identical event for the same app within the dedupe window, not a different one", () => {
    const clock = { t: 0 };
    const l = new EventRateLimiter({ now: () => clock.t });
    expect(l.check("app-a", "Warning|ReconcileFailed|boom")).toBe("ok");
    expect(l.check("app-a", "Warning|ReconcileFailed|boom")).toBe("duplicate");
    expect(l.check("app-b", "Warning|ReconcileFailed|boom")).toBe("ok");
    expect(l.check("app-a", "Normal|Deployed|rev 2")).toBe("ok");
    clock.t += 10 * 60_000;
    expect(l.check("app-a", "Warning|ReconcileFailed|boom")).toBe("ok");
  });

  it("allows a burst, then one event per refill period per app", () => {
    const clock = { t: 0 };
    const l = new EventRateLimiter({ burst: 3, refillMs: 60_000, now: () => clock.t });
    expect([1, 2, 3, 4].map((i) => l.check("a", `n${i}`))).toEqual(["ok", "ok", "ok", "rate-limited"]);
    expect(l.check("b", "n1")).toBe("ok");
    clock.t += 30_000;
    expect(l.check("a", "n5")).toBe("rate-limited");
    clock.t += 30_000;
    expect(l.check("a", "n6")).toBe("ok");
    expect(l.check("a", "n7")).toBe("rate-limited");
  });
});

describe("events for observed events", () => {
  const rev = "0123456789abcdef0123456789abcdef01234567";
  const cycle = (f: Omit<Extract<ObservedEvent, { type: "cycle" }>, "type" | "app" | "cluster" | "durationMs">): ObservedEvent => ({ type: "cycle", app: "app", cluster: "c1", durationMs: 5, ...f });
  const only = (e: ObservedEvent): PlumberEvent | undefined => {
    const out = eventsFor(e);
    expect(out.length).toBeLessThanOrEqual(1);
    return out[0]?.event;
  };

  it("deploys, drift repairs, rollbacks and failures get events; unchanged, held and aborted cycles do not", () => {
    expect(eventsFor(cycle({ outcome: "applied", revision: rev, changes: "1 created" }))).toEqual([
      { cluster: "c1", event: { app: "app", type: "Normal", reason: "Deployed", note: "revision 0123456789ab applied: 1 created" } },
    ]);
    expect(only(cycle({ outcome: "repaired", revision: rev, changes: "1 configured" }))).toEqual({ app: "app", type: "Normal", reason: "DriftRepaired", note: "drift repaired at revision 0123456789ab: 1 configured" });
    expect(only(cycle({ outcome: "rolledBack", revision: rev, failedRevision: "f".repeat(40), message: "unhealthy" }))).toEqual({
      app: "app",
      type: "Warning",
      reason: "RolledBack",
      note: "revision ffffffffffff failed; rolled back to 0123456789ab: unhealthy",
    });
    expect(only(cycle({ outcome: "failed", revision: rev, message: "bad" }))).toEqual({ app: "app", type: "Warning", reason: "ReconcileFailed", note: "revision 0123456789ab: bad" });
    // A reconcile that threw has no revision: the note is its message.
    expect(only(cycle({ outcome: "failed", message: "connection refused" }))?.note).toBe("connection refused");
    for (const outcome of ["unchanged", "held", "aborted"] as const) expect(eventsFor(cycle({ outcome, revision: rev, message: "x" }))).toEqual([]);
    expect(eventsFor({ type: "deploy", outcome: "deployed", app: "app", cluster: "c1", revision: rev, result: "applied 1" })).toEqual([]);
  });

  it("contest notices come before the cycle's own event, in the app's cluster", () => {
    const notices = [{ kind: "contested" as const, key: "v1/ConfigMap/ci/cfg", managers: ["hpa"], strikes: 1, nextInChecks: 1 }];
    const out = eventsFor(cycle({ outcome: "repaired", revision: rev, changes: "1 configured", contest: { contested: 1, deferred: 0, notices } }));
    expect(out.map((e) => [e.cluster, e.event.reason])).toEqual([
      ["c1", "FieldsContested"],
      ["c1", "DriftRepaired"],
    ]);
  });

  it("a source failing or recovering is an Event on each app whose record changed, in that app's cluster", () => {
    const next = { failingSince: "2026-01-01T00:00:00.000Z", error: "HTTP 503" };
    const out = eventsFor({
      type: "source",
      repo: "plumbing",
      apps: ["a", "b"],
      health: { failingSince: 1 },
      transition: "failing",
      changes: [
        { app: "a", cluster: "c1", next },
        { app: "b", cluster: "c2", previous: next },
      ],
    });
    expect(out.map((e) => [e.cluster, e.event.app, e.event.type, e.event.reason])).toEqual([
      ["c1", "a", "Warning", "SourceFailing"],
      ["c2", "b", "Normal", "SourceRecovered"],
    ]);
    expect(out[0]?.event.note).toMatch(/^repo plumbing: source failing since 2026-01-01T00:00:00.000Z: HTTP 503; .*the cluster keeps its current revision$/);
    expect(out[1]?.event.note).toBe("repo plumbing: listing refs works again (failing since 2026-01-01T00:00:00.000Z)");
    expect(eventsFor({ type: "source", repo: "plumbing", apps: ["a"], health: {}, changes: [] })).toEqual([]);
  });

  it("the observer adds the RBAC hint to a forbidden failure and drops refused writes", () => {
    const recorded: PlumberEvent[] = [];
    const recorder = { record: (e: PlumberEvent) => recorded.push(e), flush: async () => {} } as unknown as EventRecorder;
    const o = new EventsObserver(silentLogger());
    o.attach("c1", recorder);
    o.observe(cycle({ outcome: "failed", message: 'configmaps "x" is forbidden: User "u" cannot patch resource "configmaps"', errorReason: "Forbidden" }));
    o.observe(cycle({ outcome: "failed", message: "PATCH /api/v1/namespaces/ci/configmaps/a not sent: plumber is shutting down", errorReason: "WriteRefused" }));
    o.observe({ type: "cycle", app: "app", cluster: "elsewhere", outcome: "applied", revision: rev, durationMs: 1 });
    expect(recorded.map((e) => e.reason)).toEqual(["ReconcileFailed"]);
    expect(recorded[0]?.note).toMatch(/cannot patch resource "configmaps" — plumber's ServiceAccount lacks this permission/);
  });

  it("a forbidden error says which RBAC to extend, also when it is the cause of another; other errors are left as they are", () => {
    const msg = 'secrets "x" is forbidden: User "system:serviceaccount:plumber:plumber" cannot patch resource "secrets"';
    const forbidden = new KubeApiError(403, "Forbidden", msg, "PATCH /api/v1/namespaces/ci/secrets/x");
    expect(permissionHint(forbidden)).toMatch(/cannot patch resource "secrets" — plumber's ServiceAccount lacks this permission: grant it .*30-deploy-rbac\.yaml/);
    expect(permissionHint(new Error(`cluster local: ${msg}`, { cause: forbidden }))).toMatch(/^cluster local: .* — plumber's ServiceAccount lacks this permission/);
    // The word alone decides nothing: a 404 about a thing named "forbidden" is not a permission problem.
    expect(permissionHint(new KubeApiError(404, "NotFound", 'configmaps "forbidden" not found', "GET"))).toBe('configmaps "forbidden" not found');
    expect(permissionHint(new Error("connection refused"))).toBe("connection refused");
  });
});
