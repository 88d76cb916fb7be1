import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CHUNK_BYTES, MAX_CHUNKS, RECORD_BYTES, StateTooLargeError, chunkObjectName, chunkPrefix, generationOf, joinChunks, layoutOf } from "../../src/state/chunks.js";
import { reservedObjectGuard } from "../../src/state/guard.js";
import { stateObjectName } from "../../src/state/store.js";

const asChunks = (generation: string, parts: Buffer[]) => parts.map((payload, i) => ({ generation, index: String(i), payload }));

describe("state chunk layout", () => {
  it("keeps a payload that fits in the record beside its other data in the record itself", () => {
    expect(layoutOf("a", randomBytes(RECORD_BYTES - 1000), 1, 1000).kind).toBe("single");
    expect(layoutOf("a", randomBytes(RECORD_BYTES - 1000), 1, 1001).kind).toBe("chunked");
  });

  it("splits a larger payload into chunks of at most CHUNK_BYTES that join back to it", () => {
    const payload = randomBytes(2 * CHUNK_BYTES + 5);
    const layout = layoutOf("a", payload, 20_000, 0);
    if (layout.kind !== "chunked") throw new Error("not chunked");
    expect(layout.parts.map((p) => p.length)).toEqual([CHUNK_BYTES, CHUNK_BYTES, 5]);
    expect(layout.generation).toBe(generationOf(payload));
    expect(joinChunks("a", layout.generation, 3, asChunks(layout.generation, layout.parts)).equals(payload)).toBe(true);
  });

  it("refuses an inventory beyond MAX_CHUNKS, naming the app and the counts", () => {
    const payload = Buffer.alloc(MAX_CHUNKS * CHUNK_BYTES + 1);
    expect(() => layoutOf("huge", payload, 200_000, 0)).toThrow(StateTooLargeError);
    expect(() => layoutOf("huge", payload, 200_000, 0)).toThrow(/app "huge" has 200000 objects; .* needs 17 state chunks, more than the 16 supported .*about 199999 objects/);
  });

  it("refuses a missing, misplaced or foreign chunk and a corrupt join, never returning part of the payload", () => {
    const payload = randomBytes(2 * CHUNK_BYTES);
    const layout = layoutOf("a", payload, 1, 0);
    if (layout.kind !== "chunked") throw new Error("not chunked");
    const g = layout.generation;
    const good = asChunks(g, layout.parts);
    expect(() => joinChunks("a", g, 2, [good[0], undefined])).toThrow(/state of app "a".*ConfigMap plumber-app-a\.[0-9a-f]+\.1 is missing.*partial inventory/);
    expect(() => joinChunks("a", g, 2, [good[1]!, good[0]!])).toThrow(/does not hold chunk 0/);
    expect(() => joinChunks("a", g, 2, [good[0]!, { ...good[1]!, generation: "0".repeat(16) }])).toThrow(/does not hold chunk 1/);
    expect(() => joinChunks("a", g, 2, [good[0]!, { ...good[1]!, payload: randomBytes(8) }])).toThrow(/do not match/);
    expect(() => joinChunks("a", g, Number("x"), good)).toThrow(/chunk count/);
  });

  it("names chunks apart from every app's record and under the reserved-object guard", () => {
    const name = chunkObjectName("web", "0123456789abcdef", 2);
    expect(name.startsWith(chunkPrefix("web", "0123456789abcdef"))).toBe(true);
    expect(name.startsWith(`${stateObjectName("web")}.`)).toBe(true);
    // App names are DNS labels (no dots): no other app's record can be named like a chunk.
    expect(name).not.toMatch(/^plumber-app-[a-z0-9-]*$/);
    expect(reservedObjectGuard({ stateNamespace: "plumber" })({ group: "", kind: "ConfigMap", namespace: "ci", name })).toMatch(/plumber's own state or control records/);
  });
});
