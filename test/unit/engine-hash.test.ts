import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { canonicalJson } from "../../src/engine/hash.js";
import { withMarks } from "../../src/engine/marks.js";
import type { Resource } from "../../src/engine/resource.js";
import type { Discovery } from "../../src/kube/discovery.js";
import type { KubeClient } from "../../src/kube/client.js";
import type { KubeObject } from "../../src/types.js";

// fingerprint and desiredHash are pure: the engine never touches client or discovery for them.
const engine = (hashKey?: Uint8Array): Engine => new Engine({ client: {} as KubeClient, discovery: {} as Discovery, hashKey });

/** A Secret as the server returns it after plumber applied it: plumber's Apply entry owns data.pin. */
function liveSecret(pin: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "pin",
      namespace: "ci",
      resourceVersion: "42",
      managedFields: [{ manager: "plumber", operation: "Apply", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:pin": {} } } }],
    },
    data: { pin: Buffer.from(pin).toString("base64") },
  };
}

function desired(pin: string): Resource {
  const object = withMarks({ apiVersion: "v1", kind: "Secret", metadata: { name: "pin", namespace: "ci" }, data: { pin: Buffer.from(pin).toString("base64") } }, "app");
  return { object } as Resource;
}

const candidates = Array.from({ length: 10_000 }, (_, i) => String(i).padStart(4, "0"));
const sha = (s: string): string => createHash("sha256").update(s, "utf8").digest("hex");

/** The offline attack on stored hashes: hash every candidate the way plumber did, unkeyed. */
function bruteForceFp(storedFp: string): string | undefined {
  return candidates.find((pin) => {
    const payload = canonicalJson({ fields: { "f:data": { "f:pin": {} } }, values: { data: { pin: Buffer.from(pin).toString("base64") } } });
    return sha(payload).slice(0, 32) === storedFp;
  });
}

function bruteForceDh(storedDh: string): string | undefined {
  return candidates.find((pin) => sha(canonicalJson(desired(pin).object)).slice(0, 32) === storedDh);
}

describe("stored hashes of a Secret", () => {
  it("unkeyed, a 4-digit PIN is recovered from fp and dh by trying all 10,000 candidates", () => {
    const e = engine();
    expect(bruteForceFp(e.fingerprint(liveSecret("4711")))).toBe("4711");
    expect(bruteForceDh(e.desiredHash(desired("4711")))).toBe("4711");
  });

  it("keyed (HMAC-SHA256), no candidate matches fp or dh", () => {
    const e = engine(new Uint8Array(32).fill(7));
    const fp = e.fingerprint(liveSecret("4711"));
    const dh = e.desiredHash(desired("4711"));
    expect(bruteForceFp(fp)).toBeUndefined();
    expect(bruteForceDh(dh)).toBeUndefined();
    // Still a fingerprint: equal for the same state, different for another value or key.
    expect(e.fingerprint(liveSecret("4711"))).toBe(fp);
    expect(e.fingerprint(liveSecret("4712"))).not.toBe(fp);
    expect(engine(new Uint8Array(32).fill(8)).fingerprint(liveSecret("4711"))).not.toBe(fp);
  });
});
