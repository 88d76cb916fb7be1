// Event rate limiting and the event each reconcile result gets.
import { describe, expect, it } from "vitest";
import { ChangeSet } from "../../src/engine/changeset.js";
import type { CycleResult } from "../../src/reconcile/app.js";
import { eventFor, permissionHint } from "../../src/service/daemon.js";
import { EventRateLimiter } from "../../src/service/events.js";

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

describe("events for reconcile results", () => {
  const cs = new ChangeSet();
  cs.add({ key: "k", subject: "ConfigMap/ns/a", action: "created" });
  const rev = "0123456789abcdef0123456789abcdef01234567";

  it("deploys, drift repairs and failures get events; unchanged and held do not", () => {
    expect(eventFor("app", { kind: "applied", revision: rev, changeSet: cs })).toEqual({
      app: "app",
      type: "Normal",
      reason: "Deployed",
      note: "revision 0123456789ab applied: 1 created",
    });
    expect(eventFor("app", { kind: "repaired", revision: rev, changeSet: cs })).toMatchObject({ type: "Normal", reason: "DriftRepaired" });
    expect(eventFor("app", { kind: "failed", revision: rev, message: "bad", permanent: true })).toMatchObject({
      type: "Warning",
      reason: "ReconcileFailed",
      note: "revision 0123456789ab: bad",
    });
    expect(eventFor("app", { kind: "unchanged" })).toBeUndefined();
    expect(eventFor("app", { kind: "held", revision: rev, message: "x" } as CycleResult)).toBeUndefined();
  });

  it("a forbidden error says which RBAC to extend", () => {
    const msg = 'Forbidden: secrets "x" is forbidden: User "system:serviceaccount:plumber:plumber" cannot patch resource "secrets"';
    expect(permissionHint(new Error(msg))).toMatch(/cannot patch resource "secrets" — plumber's ServiceAccount lacks this permission: grant it .*30-deploy-rbac\.yaml/);
    expect(permissionHint(new Error("connection refused"))).toBe("connection refused");
  });
});
