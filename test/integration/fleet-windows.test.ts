// Sync windows against the real control plane: a new revision outside the allow window is planned
// and shown as waiting, and applied when the window opens, without another commit.
import { afterEach, describe, expect, it } from "vitest";
import type { AppReconciler } from "../../src/reconcile/app.js";
import type { Clock } from "../../src/reconcile/clock.js";
import { StateStore } from "../../src/state/store.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

/** A clock the test moves by hand: window verdicts never depend on when the suite runs. */
function handClock(iso: string): Clock & { set(iso: string): void } {
  let t = new Date(iso);
  return { now: () => new Date(t), set: (s) => (t = new Date(s)) };
}

describe("sync windows", () => {
  it("waits outside the allow window, keeps repairing drift, applies when the window opens", async () => {
    const clock = handClock("2026-03-10T10:00:00Z");
    const h = await harness({ "cm.yaml": configMap("cm", { v: "1" }) }, { clock });
    open.push(h);
    const cm = () => getObject(h.kube, `/api/v1/namespaces/${h.namespace}/configmaps/cm`);
    expect((await h.cycle()).kind).toBe("applied");

    await h.reconfigure({ app: { windows: [{ kind: "allow", schedule: "0 11 * * *", duration: "10m" }] } });
    const sha = await h.repo.commit({ "cm.yaml": configMap("cm", { v: "2" }) }, "v2");
    const res = await h.cycle();
    expect(res).toMatchObject({ kind: "held", revision: sha });
    if (res.kind !== "held") return;
    expect(res.message).toContain(`revision ${sha.slice(0, 12)} waits for a sync window: outside the allow windows (next opens at 2026-03-10T11:00:00.000Z)`);
    expect(res.message).toContain("(0 to create, 1 to configure, 0 to prune)");
    expect((await cm())?.data).toEqual({ v: "1" });
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    // Status is stamped with the injected clock, not the wall clock.
    expect(state).toMatchObject({ pendingRevision: sha, message: res.message, updatedAt: "2026-03-10T10:00:00.000Z" });
    // held, no status write per cycle; drift is still repaired
    h.counts();
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts().writes).toBe(0);
    // The plan goes through the same gates, writing nothing: it says what holds the revision.
    const plan = await (h.rt.apps[0] as AppReconciler).plan(sha);
    expect(plan.step).toBe("advance");
    expect(plan.gates.map((g) => `${g.gate}:${g.verdict.verdict}`)).toEqual(["signature:pass", "dependsOn:pass", "windows:hold", "approval:pass"]);
    expect(plan.gates[2]?.verdict).toMatchObject({ message: expect.stringContaining("next opens at 2026-03-10T11:00:00.000Z") });
    expect(plan.objects.map((o) => `${o.action} ${o.resource.subject}`)).toEqual([`configured ConfigMap/${h.namespace}/cm`]);
    expect(h.counts().writes).toBe(0);
    await h.kube.request({ method: "DELETE", path: `/api/v1/namespaces/${h.namespace}/configmaps/cm` });
    expect((await h.cycle()).kind).toBe("repaired");
    expect((await cm())?.data).toEqual({ v: "1" });

    // A second before it opens it still waits; inside the window the revision goes out, without another commit.
    clock.set("2026-03-10T10:59:59Z");
    expect((await h.cycle()).kind).toBe("held");
    clock.set("2026-03-10T11:00:01Z");
    expect((await (h.rt.apps[0] as AppReconciler).plan(sha)).gates.every((g) => g.verdict.verdict === "pass")).toBe(true);
    expect(await h.cycle()).toMatchObject({ kind: "applied", revision: sha });
    expect((await cm())?.data).toEqual({ v: "2" });
    expect((await new StateStore(h.kube, h.stateNamespace).load(h.app))?.appliedAt).toBe("2026-03-10T11:00:01.000Z");
    // Past the window's ten minutes a newer revision waits for tomorrow's opening.
    clock.set("2026-03-10T11:10:00Z");
    await h.repo.commit({ "cm.yaml": configMap("cm", { v: "3" }) }, "v3");
    expect(await h.cycle()).toMatchObject({ kind: "held", message: expect.stringContaining("next opens at 2026-03-11T11:00:00.000Z") });
  });

  it("a deny window blocks syncing (deny wins over allow) and, with allowDriftRepair: false, drift repair too", async () => {
    const h = await harness({ "cm.yaml": configMap("cm", { v: "1" }) }, { clock: handClock("2026-03-10T10:00:00Z") });
    open.push(h);
    expect((await h.cycle()).kind).toBe("applied");
    await h.reconfigure({
      app: {
        windows: [
          { kind: "allow", schedule: "* * * * *", duration: "5m" },
          { kind: "deny", schedule: "* * * * *", duration: "5m", allowDriftRepair: false },
        ],
      },
    });
    await h.repo.commit({ "cm.yaml": configMap("cm", { v: "2" }) }, "v2");
    expect(await h.cycle()).toMatchObject({ kind: "held", message: expect.stringContaining("waits for a sync window: deny window") });
    await h.kube.request({ method: "DELETE", path: `/api/v1/namespaces/${h.namespace}/configmaps/cm` });
    expect((await h.cycle()).kind).toBe("held");
    expect(await getObject(h.kube, `/api/v1/namespaces/${h.namespace}/configmaps/cm`)).toBeUndefined();
  });
});
