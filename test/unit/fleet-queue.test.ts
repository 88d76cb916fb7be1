// The daemon's work queue: apps whose input changed go ahead of drift looks, dependencies still go
// first, an app runs once at a time and takes the newest head, and a listing that moves a running
// app's branch queues it again as it ends. Driven by hand: each turn ends when the test says so.
import { describe, expect, it } from "vitest";
import { WorkQueue, type Listed } from "../../src/reconcile/queue.js";
import { pickNext, raiseDependencies, type Queued } from "../../src/reconcile/schedule.js";

interface A {
  name: string;
  dependsOn: string[];
}
const app = (name: string, ...dependsOn: string[]): A => ({ name, dependsOn });

describe("pickNext", () => {
  const q = (...xs: [A, boolean][]): Queued<A>[] => xs.map(([item, first]) => ({ item, first }));
  const a = app("a");
  const b = app("b");
  const c = app("c", "a");
  it("takes the oldest app whose input changed, else the oldest", () => {
    expect(pickNext(q([a, false], [b, true], [c, true]), 0, () => false)).toBe(1);
    expect(pickNext(q([a, false], [b, false]), 0, () => false)).toBe(0);
    expect(pickNext([], 0, () => false)).toBe(-1);
  });
  it("skips an app that waits on another, and takes the oldest when all wait and nothing runs", () => {
    const waits = (x: A) => x === c || x === a;
    expect(pickNext(q([c, true], [b, false]), 0, waits)).toBe(1);
    expect(pickNext(q([c, true], [a, false]), 1, waits)).toBe(-1);
    expect(pickNext(q([c, true], [a, false]), 0, waits)).toBe(0);
  });
  it("raises the dependencies of an app whose input changed, transitively, and leaves the rest", () => {
    const base = app("base");
    const mid = app("mid", "base");
    const top = app("top", "mid");
    const other = app("other");
    const queue = q([base, false], [other, false], [mid, false], [top, true]);
    raiseDependencies(queue, (x) => x.name, (x) => x.dependsOn);
    expect(queue.map((x) => `${x.item.name}:${x.first}`)).toEqual(["base:true", "other:false", "mid:true", "top:true"]);
  });
});

/** A queue whose turns end when the test resolves them; `log` holds "name@head" as each starts. */
function harness(concurrency: number, due: (a: A) => boolean = () => true) {
  const log: string[] = [];
  const ends = new Map<string, () => void>();
  const stop = new AbortController();
  const queue = new WorkQueue<A, string>({
    concurrency,
    signal: stop.signal,
    name: (a) => a.name,
    dependsOn: (a) => a.dependsOn,
    due,
    run: (a, head) => {
      log.push(`${a.name}@${head}`);
      return new Promise<void>((resolve) => ends.set(a.name, resolve));
    },
  });
  const listing = (head: string, apps: A[], first: string[] = []): Listed<A, string>[] =>
    apps.map((item) => ({ item, work: head, moved: (before) => before !== head, first: first.includes(item.name) }));
  const end = async (name: string) => {
    const f = ends.get(name);
    if (!f) throw new Error(`${name} is not running`);
    ends.delete(name);
    f();
    // Let the turn's finally run and the next app start.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { log, queue, listing, end, running: () => [...ends.keys()], stop };
}

describe("WorkQueue", () => {
  const apps = ["a", "b", "c", "d"].map((n) => app(n));
  it("puts an app whose input changed ahead of every queued drift look", async () => {
    const h = harness(1);
    h.queue.listed(h.listing("h1", apps));
    expect(h.log).toEqual(["a@h1"]);
    // A commit for d lands while a's look runs: d goes next, ahead of b and c.
    h.queue.listed(h.listing("h2", apps, ["d"]));
    await h.end("a");
    expect(h.log).toEqual(["a@h1", "d@h2"]);
    await h.end("d");
    // b and c were queued at h1 and start at the newest head; a moved while it ran: queued again.
    await h.end("b");
    await h.end("c");
    expect(h.log).toEqual(["a@h1", "d@h2", "b@h2", "c@h2", "a@h2"]);
  });

  it("runs an app once at a time, and does not queue a running app again when its branch did not move", async () => {
    const h = harness(4);
    h.queue.listed(h.listing("h1", apps.slice(0, 2)));
    h.queue.listed(h.listing("h1", apps.slice(0, 2)));
    expect(h.running()).toEqual(["a", "b"]);
    await h.end("a");
    await h.end("b");
    expect(h.log).toEqual(["a@h1", "b@h1"]);
    expect(h.running()).toEqual([]);
  });

  it("starts a dependent only after its dependency's turn, and leaves out apps that are not due", async () => {
    const base = app("base");
    const dep = app("dep", "base");
    const idle = app("idle");
    const h = harness(4, (a) => a !== idle);
    h.queue.listed(h.listing("h1", [dep, base, idle], ["dep"]));
    expect(h.log).toEqual(["base@h1"]);
    await h.end("base");
    expect(h.log).toEqual(["base@h1", "dep@h1"]);
    await h.end("dep");
    await h.queue.drained();
    expect(h.log).not.toContain("idle@h1");
  });

  it("drops a queued app that stopped being due before it starts (sharding: given away), and queues it no more", async () => {
    let mine = new Set(["a", "b"]);
    const h = harness(1, (a) => mine.has(a.name));
    h.queue.listed(h.listing("h1", apps.slice(0, 2)));
    expect(h.log).toEqual(["a@h1"]);
    mine = new Set(["a"]);
    h.queue.listed(h.listing("h2", apps.slice(0, 2)));
    await h.end("a");
    // b was handed over while it waited; a moved while it ran and is still this replica's.
    expect(h.log).toEqual(["a@h1", "a@h2"]);
    await h.end("a");
    expect(h.running()).toEqual([]);
  });

  it("starts nothing after an abort, and drained waits for what runs", async () => {
    const h = harness(1);
    h.queue.listed(h.listing("h1", apps.slice(0, 2)));
    h.stop.abort();
    let drained = false;
    const d = h.queue.drained().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    await h.end("a");
    await d;
    expect(h.log).toEqual(["a@h1"]);
  });
});
