// Source health as pure logic (injected clock) and its records: written on transitions only,
// read once per app per process, kept across a restart in the middle of an outage.
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import { describeSource, SourceHealth, sourceRecordFromData, sourceRecordToData, SourceRecords, type SourceRecord, type SourceStore } from "../../src/state/source.js";

function memoryStore(initial: Record<string, SourceRecord> = {}): SourceStore & { writes: number; reads: number; data: Map<string, SourceRecord> } {
  const data = new Map(Object.entries(initial));
  const s = {
    writes: 0,
    reads: 0,
    data,
    async load(app: string) {
      s.reads++;
      return data.get(app);
    },
    async save(app: string, r: SourceRecord | undefined) {
      s.writes++;
      if (r) data.set(app, r);
      else data.delete(app);
    },
  };
  return s;
}

const T0 = Date.parse("2026-12-01T12:00:00.000Z");

describe("SourceHealth", () => {
  it("reports failing on the first failure of an outage and recovered on the first good listing", () => {
    let now = T0;
    const h = new SourceHealth(() => now);
    expect(h.listed()).toBeUndefined();
    expect(h.lastGoodAt).toBe(T0);
    now += 60_000;
    expect(h.failed("HTTP 500")).toBe("failing");
    now += 60_000;
    expect(h.failed("HTTP 502")).toBeUndefined();
    expect(h).toMatchObject({ failingSince: T0 + 60_000, error: "HTTP 502", failures: 2, lastGoodAt: T0 });
    now += 60_000;
    expect(h.listed()).toBe("recovered");
    expect(h).toMatchObject({ failingSince: undefined, error: undefined, failures: 0, lastGoodAt: T0 + 180_000, recoveredFrom: T0 + 60_000 });
  });

  it("adopts an earlier start of the same outage, never a later one", () => {
    const h = new SourceHealth(() => T0);
    h.failed("x");
    h.adopt(T0 + 5);
    expect(h.failingSince).toBe(T0);
    h.adopt(T0 - 5);
    expect(h.failingSince).toBe(T0 - 5);
  });
});

describe("SourceRecords", () => {
  it("writes once when the source fails and once when it recovers, never per poll", async () => {
    let now = T0;
    const h = new SourceHealth(() => now);
    const store = memoryStore();
    const recs = new SourceRecords(store, h, silentLogger());
    h.listed();
    recs.rememberHeads("a", { main: "a".repeat(40) });
    recs.rememberHeads("b", { release: "b".repeat(40) });
    await recs.sync(["a", "b"]);
    expect({ reads: store.reads, writes: store.writes }).toEqual({ reads: 2, writes: 0 });
    for (let i = 0; i < 5; i++) await recs.sync(["a", "b"]);
    expect({ reads: store.reads, writes: store.writes }).toEqual({ reads: 2, writes: 0 });

    now += 30_000;
    h.failed("listing refs: HTTP 500 Internal Server Error");
    expect((await recs.sync(["a", "b"])).map((c) => c.app)).toEqual(["a", "b"]);
    expect(store.data.get("a")).toEqual({
      failingSince: "2026-12-01T12:00:30.000Z",
      error: "listing refs: HTTP 500 Internal Server Error",
      lastGoodAt: "2026-12-01T12:00:00.000Z",
      lastGoodHeads: { main: "a".repeat(40) },
    });
    for (let i = 0; i < 10; i++) {
      now += 1000;
      h.failed("listing refs: timeout");
      expect(await recs.sync(["a", "b"])).toEqual([]);
    }
    expect(store.writes).toBe(2);
    const [ra, rb] = [store.data.get("a"), store.data.get("b")];
    expect(rb?.lastGoodHeads).toEqual({ release: "b".repeat(40) });
    h.listed();
    expect(await recs.sync(["a", "b"])).toEqual([{ app: "a", previous: ra }, { app: "b", previous: rb }]);
    expect(store.data.size).toBe(0);
    await recs.sync(["a", "b"]);
    expect({ reads: store.reads, writes: store.writes }).toEqual({ reads: 2, writes: 4 });
  });

  it("a restarted plumber keeps the outage's start and writes nothing while it lasts; clears it when it ends", async () => {
    const earlier: SourceRecord = { failingSince: "2026-12-01T11:00:00.000Z", error: "HTTP 500", lastGoodAt: "2026-12-01T10:59:00.000Z", lastGoodHeads: { main: "c".repeat(40) } };
    const store = memoryStore({ a: earlier });
    const h = new SourceHealth(() => T0);
    const recs = new SourceRecords(store, h, silentLogger());
    h.failed("HTTP 503");
    await recs.sync(["a"]);
    expect(store.writes).toBe(0);
    expect(h.failingSince).toBe(Date.parse(earlier.failingSince));
    expect(recs.record("a")).toEqual(earlier);
    h.listed();
    expect(await recs.sync(["a"])).toEqual([{ app: "a", previous: earlier }]);
    expect(store.writes).toBe(1);
    expect(store.data.has("a")).toBe(false);
  });

  it("tries a failed write again at the next poll", async () => {
    const h = new SourceHealth(() => T0);
    const store = memoryStore();
    let broken = true;
    const flaky: SourceStore = { load: (a) => store.load(a), save: async (a, r) => (broken ? Promise.reject(new Error("apiserver down")) : store.save(a, r)) };
    const recs = new SourceRecords(flaky, h, silentLogger());
    h.failed("HTTP 500");
    expect(await recs.sync(["a"])).toEqual([]);
    broken = false;
    expect((await recs.sync(["a"])).map((c) => c.app)).toEqual(["a"]);
    expect(store.data.get("a")?.error).toBe("HTTP 500");
  });
});

describe("source records in the state ConfigMap", () => {
  it("round-trips through data keys, and says what failed in one line", () => {
    const r: SourceRecord = { failingSince: "2026-12-01T12:00:30.000Z", error: "HTTP 500\nmore", lastGoodAt: "2026-12-01T12:00:00.000Z", lastGoodHeads: { main: "a".repeat(40) } };
    const data = sourceRecordToData(r);
    expect(Object.keys(data).sort()).toEqual(["sourceError", "sourceFailingSince", "sourceLastGoodAt", "sourceLastGoodHeads"]);
    expect(sourceRecordFromData(data)).toEqual(r);
    expect(sourceRecordFromData({ revision: "x" })).toBeUndefined();
    expect(describeSource(r)).toBe(`source failing since 2026-12-01T12:00:30.000Z: HTTP 500; last good listing 2026-12-01T12:00:00.000Z (main=${"a".repeat(12)})`);
    expect(describeSource({ failingSince: "t", error: "e" })).toBe("source failing since t: e; no good listing since plumber started");
  });
});
