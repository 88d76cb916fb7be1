// The daemon's loop on a monorepo: every commit moves the branch of every app, but only the app
// whose path changed has anything new to apply, so it goes ahead of its siblings' turns; and a
// commit that needs no wait costs one state write, not two.
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import type { ObservedEvent } from "../../src/observe/events.js";
import { RepoPoller } from "../../src/reconcile/poller.js";
import { sleep } from "../../src/util/pool.js";
import { configMap, getObject } from "./support.js";
import { fleet, type Fleet } from "./fleet-support.js";

const open: Fleet[] = [];
const stops: AbortController[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s.abort();
  for (const f of open.splice(0)) f.close();
});

const DAEMON = { deferWaits: true, backoff: true } as const;

async function until(what: string, f: () => Promise<boolean> | boolean): Promise<void> {
  for (let t = performance.now(); !(await f()); await sleep(50)) if (performance.now() - t > 60_000) throw new Error(`not within 60 s: ${what}`);
}

describe("the daemon's work queue", () => {
  it("applies the app whose path a commit changed before its siblings take their turns on it", async () => {
    const cycles: Extract<ObservedEvent, { type: "cycle" }>[] = [];
    const keys = ["a", "b", "c", "d", "e"];
    const f = await fleet(
      Object.fromEntries(keys.map((k) => [`${k}/cm.yaml`, configMap(k, { v: "1" })])),
      Object.fromEntries(keys.map((k) => [k, { path: k }])),
      {},
      { observer: { observe: (e) => void (e.type === "cycle" && cycles.push(e)) } },
    );
    open.push(f);
    const first = await f.cycle(DAEMON);
    expect(Object.values(first).map((r) => r.kind)).toEqual(keys.map(() => "applied"));

    // One worker: whoever goes first is the queue's choice, never a race between workers.
    const conn = f.rt.repos.get("plumbing")!;
    const poller = new RepoPoller({ ...conn, config: { ...conn.config, concurrency: 1 } }, f.rt.apps, silentLogger());
    const stop = new AbortController();
    stops.push(stop);
    const loop = poller.run(stop.signal);
    const seen = cycles.length;
    await until("every app looked at once", () => new Set(cycles.slice(seen).map((c) => c.app)).size === keys.length);

    // The last app in config order changes: base order would reconcile it last.
    const rev2 = await f.repo.commit({ "e/cm.yaml": configMap("e", { v: "2" }) }, "e v2");
    const e = f.apps.e!;
    await until("e applied", async () => (await getObject(f.kube, `/api/v1/namespaces/${e.namespace}/configmaps/e`))?.data?.v === "2");
    await until("every app at the new revision", () => new Set(cycles.filter((c) => c.revision === rev2).map((c) => c.app)).size === keys.length);
    stop.abort();
    await loop;

    const atRev2 = cycles.filter((c) => c.revision === rev2);
    expect(atRev2[0]).toMatchObject({ app: e.name, outcome: "applied" });
    expect(atRev2[0]?.changes).toMatch(/1 configured/);
    // The siblings moved to the commit too, with nothing to write.
    for (const c of atRev2.slice(1)) expect(c.changes).not.toMatch(/configured|created/);
  });

  it("saves the state once for a commit that needs no wait: Ready, straight from the apply", async () => {
    const f = await fleet({ "a/cm.yaml": configMap("a", { v: "1" }) }, { a: { path: "a" } });
    open.push(f);
    expect((await f.cycle(DAEMON)).a?.kind).toBe("applied");
    const stats = f.rt.clusters.get("local")!.client.stats;
    const rev2 = await f.repo.commit({ "a/cm.yaml": configMap("a", { v: "2" }) }, "a v2");
    const s0 = stats.snapshot();
    expect((await f.cycle(DAEMON)).a).toMatchObject({ kind: "applied", revision: rev2 });
    const s1 = stats.snapshot();
    // The object's apply and one state write.
    expect(s1.writes - s0.writes).toBe(2);
    expect(await f.state("a")).toMatchObject({ phase: "Ready", revision: rev2, goodRevision: rev2 });
  });
});
