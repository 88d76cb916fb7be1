// Sync windows against the real control plane: a new revision outside the allow window is planned
// and shown as waiting, and applied when the window opens, without another commit.
import { afterEach, describe, expect, it } from "vitest";
import { StateStore } from "../../src/state/store.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

/** A 6-field cron expression firing once, at `d` (UTC, whole seconds). */
const cronAt = (d: Date) => `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} ${d.getUTCDate()} ${d.getUTCMonth() + 1} *`;

describe("sync windows", () => {
  it("waits outside the allow window, keeps repairing drift, applies when the window opens", async () => {
    const h = await harness({ "cm.yaml": configMap("cm", { v: "1" }) });
    open.push(h);
    const cm = () => getObject(h.kube, `/api/v1/namespaces/${h.namespace}/configmaps/cm`);
    expect((await h.cycle()).kind).toBe("applied");

    const opens = new Date(Math.ceil((Date.now() + 4000) / 1000) * 1000);
    await h.reconfigure({ app: { windows: [{ kind: "allow", schedule: cronAt(opens), duration: "10m" }] } });
    const sha = await h.repo.commit({ "cm.yaml": configMap("cm", { v: "2" }) }, "v2");
    const res = await h.cycle();
    expect(res).toMatchObject({ kind: "held", revision: sha });
    if (res.kind !== "held") return;
    expect(res.message).toContain(`revision ${sha.slice(0, 12)} waits for a sync window: outside the allow windows (next opens at ${opens.toISOString()})`);
    expect(res.message).toContain("(0 to create, 1 to configure, 0 to prune)");
    expect((await cm())?.data).toEqual({ v: "1" });
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state).toMatchObject({ pendingRevision: sha, message: res.message });
    // held, no status write per cycle; drift is still repaired
    h.counts();
    expect((await h.cycle()).kind).toBe("held");
    expect(h.counts().writes).toBe(0);
    await h.kube.request({ method: "DELETE", path: `/api/v1/namespaces/${h.namespace}/configmaps/cm` });
    expect((await h.cycle()).kind).toBe("repaired");
    expect((await cm())?.data).toEqual({ v: "1" });

    await new Promise((r) => setTimeout(r, Math.max(0, opens.getTime() - Date.now() + 200)));
    expect(await h.cycle()).toMatchObject({ kind: "applied", revision: sha });
    expect((await cm())?.data).toEqual({ v: "2" });
  });

  it("a deny window blocks syncing (deny wins over allow) and, with allowDriftRepair: false, drift repair too", async () => {
    const h = await harness({ "cm.yaml": configMap("cm", { v: "1" }) });
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
