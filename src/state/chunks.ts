// How an app's gzipped inventory is laid out over ConfigMaps. A ConfigMap holds at most 1 MiB
// (binaryData counted decoded), and a random 64-hex hash does not compress, so an inventory entry
// costs ~80 bytes gzipped: ~13k entries fit in one object. Larger inventories are split into chunk
// objects named by a generation (a hash of the whole payload), so writing a new generation never
// touches the chunks the main record points to: a kill at any point leaves the old generation whole.
import { createHash } from "node:crypto";

/** Payload bytes per chunk object: base64 in the request is 4/3 of this, well under the 1 MiB object limit and etcd's 1.5 MiB request limit. */
export const CHUNK_BYTES = 768 * 1024;
/**
 * While the payload and the record's other data (status, history) stay within this, the inventory
 * stays in the record itself, as every state did before chunking: what fitted before is stored as
 * before (and an older plumber still reads it). The apiserver's limit is 1 MiB of values, binaryData decoded.
 */
export const RECORD_BYTES = 1024 * 1024 - 16 * 1024;
/** Chunks per app: 12 MiB gzipped, ~150k entries. Bounds the requests of a save and a load. */
export const MAX_CHUNKS = 16;

export type Layout = { kind: "single" } | { kind: "chunked"; generation: string; parts: Buffer[] };

/** The generation of a payload: names its chunks and verifies them when they are joined again. */
export function generationOf(payload: Buffer): string {
  return createHash("sha256").update(payload).digest("hex").slice(0, 16);
}

/**
 * Chunk names contain dots, which an app name (a DNS label) cannot, so no chunk name is another
 * app's main record `plumber-app-<app>`; the prefix keeps them under the reserved-object guard.
 */
export function chunkObjectName(app: string, generation: string, index: number): string {
  return `${chunkPrefix(app, generation)}${index}`;
}

/** What the names of an app's chunks of a generation begin with (generation "": of any generation). */
export function chunkPrefix(app: string, generation: string): string {
  return generation ? `plumber-app-${app}.${generation}.` : `plumber-app-${app}.`;
}

export class StateTooLargeError extends Error {}

/** Where a payload goes, beside `recordBytes` of other data; an inventory beyond MAX_CHUNKS is refused with what it would need. */
export function layoutOf(app: string, payload: Buffer, entries: number, recordBytes: number): Layout {
  if (payload.length + recordBytes <= RECORD_BYTES) return { kind: "single" };
  const parts: Buffer[] = [];
  for (let at = 0; at < payload.length; at += CHUNK_BYTES) parts.push(payload.subarray(at, at + CHUNK_BYTES));
  if (parts.length > MAX_CHUNKS) {
    const perEntry = payload.length / Math.max(entries, 1);
    const supported = Math.floor((MAX_CHUNKS * CHUNK_BYTES) / perEntry);
    throw new StateTooLargeError(
      `app "${app}" has ${entries} objects; their inventory is ${payload.length} bytes gzipped and needs ${parts.length} state chunks, ` +
        `more than the ${MAX_CHUNKS} supported (${MAX_CHUNKS * CHUNK_BYTES} bytes, about ${supported} objects like these): split the app`,
    );
  }
  return { kind: "chunked", generation: generationOf(payload), parts };
}

/** The payload again, or why not: a chunk missing, out of place or from another generation must never load as a partial inventory. */
export function joinChunks(app: string, generation: string, count: number, chunks: ({ generation?: string; index?: string; payload?: Buffer } | undefined)[]): Buffer {
  const refuse = (why: string): never => {
    throw new Error(`state of app "${app}": inventory generation ${generation} (${count} chunks) cannot be read: ${why}; refusing to load a partial inventory (pruning from it could delete or orphan objects)`);
  };
  if (!Number.isInteger(count) || count < 1 || count > MAX_CHUNKS) refuse(`the chunk count "${count}" is not valid`);
  if (chunks.length !== count) refuse(`${chunks.length} chunks given`);
  const parts = chunks.map((c, i) => {
    const name = chunkObjectName(app, generation, i);
    if (!c) return refuse(`ConfigMap ${name} is missing`);
    if (c.generation !== generation || c.index !== String(i) || !c.payload) return refuse(`ConfigMap ${name} does not hold chunk ${i} of that generation`);
    return c.payload;
  });
  const payload = Buffer.concat(parts);
  if (generationOf(payload) !== generation) refuse("the joined chunks do not match the generation's hash");
  return payload;
}
