// A commit right after a drift look, or right after another commit: the sync stands on the last
// look (a drift look's LIST, or the last sync's LIST with its writes over it) instead of listing
// the app's objects again, as long as it is fresh (EngineDeps.freshListMs) and no repair wrote
// since. Against the real apiserver; request counts from the client.
import { afterEach, describe, expect, it } from "vitest";
import { bed, cm, type Bed } from "./engine-support.js";

const open: Bed[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
});

const lists = (b: Bed) => b.sent().filter((r) => r.method === "GET" && r.list).length;

describe("a fresh drift look's LIST", () => {
  it("stands in for the sync's own LIST, and so does the look a sync leaves; without freshListMs every sync lists", async () => {
    const b = await bed();
    open.push(b);
    const engine = b.engine({ freshListMs: 60_000 });
    const first = await engine.sync(b.req([cm("a", { v: "1" }), cm("b", { v: "1" })]));
    const drift = await engine.detectDrift(b.owner, first.inventory);
    expect(drift.drifted.concat(drift.missing)).toEqual([]);
    b.sent();

    const out = await engine.sync({ ...b.req([cm("a", { v: "2" }), cm("b", { v: "1" })], first.inventory), prefetched: engine.prefetchLive(b.owner, first.inventory) });
    expect(out.changeSet.summary()).toMatchObject({ configured: 1, unchanged: 1 });
    expect(lists(b)).toBe(0);
    expect((await b.get<{ data: { v: string } }>(`/api/v1/namespaces/${b.namespace}/configmaps/a`))?.data.v).toBe("2");

    // The sync's own look (its LIST with what it wrote over it) stands for the next commit too;
    // a's answer stands over the listed a, so a is unchanged: nothing is sent to it but reads.
    b.sent();
    const again = await engine.sync({ ...b.req([cm("a", { v: "2" }), cm("b", { v: "2" })], out.inventory), prefetched: engine.prefetchLive(b.owner, out.inventory) });
    expect(again.changeSet.summary()).toMatchObject({ configured: 1, unchanged: 1 });
    expect(again.changeSet.entries.find((e) => e.key.endsWith("/a"))?.action).toBe("unchanged");
    const sentAgain = b.sent();
    expect(sentAgain.filter((r) => r.method === "GET" && r.list)).toEqual([]);
    expect(sentAgain.filter((r) => r.method === "PATCH" && r.path.endsWith("/configmaps/a"))).toEqual([]);
    expect((await b.get<{ data: { v: string } }>(`/api/v1/namespaces/${b.namespace}/configmaps/b`))?.data.v).toBe("2");

    const plain = b.engine();
    await plain.detectDrift(b.owner, again.inventory);
    b.sent();
    await plain.sync({ ...b.req([cm("a", { v: "3" }), cm("b", { v: "2" })], again.inventory), prefetched: plain.prefetchLive(b.owner, again.inventory) });
    expect(lists(b)).toBeGreaterThan(0);
  });

  it("is not used once older than freshListMs: the sync lists", async () => {
    const b = await bed();
    open.push(b);
    const engine = b.engine({ freshListMs: 300 });
    const first = await engine.sync(b.req([cm("a", { v: "1" })]));
    await engine.detectDrift(b.owner, first.inventory);
    await new Promise((r) => setTimeout(r, 400));
    b.sent();
    await engine.prefetchLive(b.owner, first.inventory)?.done;
    expect(lists(b)).toBeGreaterThan(0);
  });

  it("a sync that stood on a look from the last round lists again after its writes, so the next commit's look is of this round", async () => {
    const b = await bed();
    open.push(b);
    const window = 4000;
    const engine = b.engine({ freshListMs: window });
    const first = await engine.sync(b.req([cm("a", { v: "1" })]));
    await engine.detectDrift(b.owner, first.inventory);
    const lookedAt = performance.now();
    // Past half the window: the look is from "the last round" (three quarters: the look listed
    // after this sync is young enough at the next one not to be listed again behind it).
    await new Promise((r) => setTimeout(r, (window * 3) / 4));
    b.sent();
    const out = await engine.sync({ ...b.req([cm("a", { v: "2" })], first.inventory), prefetched: engine.prefetchLive(b.owner, first.inventory) });
    expect(out.changeSet.summary()).toMatchObject({ configured: 1 });
    // The background LIST, after the write.
    let sent = b.sent();
    for (let i = 0; i < 100 && !sent.some((r) => r.method === "GET" && r.list); i++) {
      await new Promise((r) => setTimeout(r, 50));
      sent = sent.concat(b.sent());
    }
    const writeAt = sent.findIndex((r) => r.method === "PATCH" && r.query?.dryRun === undefined);
    const listAt = sent.findIndex((r) => r.method === "GET" && r.list);
    expect(writeAt).toBeGreaterThanOrEqual(0);
    expect(listAt).toBeGreaterThan(writeAt);
    // The first look is past the window now; the one listed after the write is not.
    await new Promise((r) => setTimeout(r, Math.max(0, lookedAt + window + 100 - performance.now())));
    b.sent();
    const next = await engine.sync({ ...b.req([cm("a", { v: "3" })], out.inventory), prefetched: engine.prefetchLive(b.owner, out.inventory) });
    expect(next.changeSet.summary()).toMatchObject({ configured: 1 });
    expect(lists(b)).toBe(0);
  });

  it("is dropped by a drift repair's writes", async () => {
    const b = await bed();
    open.push(b);
    const engine = b.engine({ freshListMs: 60_000 });
    const manifests = [cm("a", { v: "1" })];
    const first = await engine.sync(b.req(manifests));
    await b.client.request({ method: "DELETE", path: `/api/v1/namespaces/${b.namespace}/configmaps/a` });
    const drift = await engine.detectDrift(b.owner, first.inventory);
    expect(drift.missing).toHaveLength(1);
    await engine.repair(b.owner, manifests, b.namespace, drift, first.inventory);
    b.sent();
    await engine.prefetchLive(b.owner, first.inventory)?.done;
    expect(lists(b)).toBeGreaterThan(0);
  });
});
