// Hashes in plumber's state are keyed with a per-installation key kept in a Secret beside the
// state (real apiserver, real git server, the reconciler): a reader of the state ConfigMaps cannot
// test guesses of a Secret's values against them. State written by an older plumber (unkeyed
// hashes) costs one round of dry-runs after the upgrade and rewrites nothing but the state.
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { Engine } from "../../src/engine/engine.js";
import type { KubeObject } from "../../src/types.js";
import { Discovery } from "../../src/kube/discovery.js";
import { parseIdKey } from "../../src/manifests/identity.js";
import { HASH_KEY_SECRET, hashKeyId } from "../../src/state/hashkey.js";
import { StateStore } from "../../src/state/store.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

const secret = (name: string, pin: string) => stringify({ apiVersion: "v1", kind: "Secret", metadata: { name }, stringData: { pin } });

async function liveOf(h: Harness, key: string): Promise<KubeObject> {
  const id = parseIdKey(key);
  const plural = id.kind === "Secret" ? "secrets" : "configmaps";
  const obj = await getObject<KubeObject>(h.kube, `/api/v1/namespaces/${id.namespace}/${plural}/${id.name}`);
  if (!obj) throw new Error(`${key} is gone`);
  return obj;
}

describe("keyed hashes in plumber's state", () => {
  it("the key is created once in the state namespace, used by every run, and the stored hashes are not the unkeyed ones", async () => {
    const h = await harness({ "a.yaml": configMap("a", { v: "1" }), "s.yaml": secret("pin", "4821") });
    open.push(h);
    expect((await h.cycle()).kind).toBe("applied");
    const stored = await getObject<{ data: Record<string, string> }>(h.kube, `/api/v1/namespaces/${h.stateNamespace}/secrets/${HASH_KEY_SECRET}`);
    const key = Buffer.from(stored?.data.key ?? "", "base64");
    expect(key.length).toBe(32);
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state?.hashKeyId).toBe(hashKeyId(new Uint8Array(key)));

    const unkeyed = new Engine({ client: h.kube, discovery: new Discovery(h.kube) });
    for (const e of state?.inventory ?? []) expect(e.fp).not.toBe(unkeyed.fingerprint(await liveOf(h, e.key)));

    // A restarted plumber finds the same key: its first cycle needs no dry-run and writes nothing.
    await h.restart();
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
    const again = await getObject<{ data: Record<string, string> }>(h.kube, `/api/v1/namespaces/${h.stateNamespace}/secrets/${HASH_KEY_SECRET}`);
    expect(again?.data.key).toBe(stored?.data.key);
  });

  it("state with unkeyed hashes from an older plumber: one round of dry-runs, no object rewritten, then quiet", async () => {
    const files: Record<string, string> = { "s.yaml": secret("pin", "4821") };
    for (let i = 0; i < 5; i++) files[`cm-${i}.yaml`] = configMap(`cm-${i}`, { i: String(i) });
    const h = await harness(files);
    open.push(h);
    expect((await h.cycle()).kind).toBe("applied");

    // Rewrite the state as a plumber before keyed hashes stored it: unkeyed fingerprints, no key id.
    const store = new StateStore(h.kube, h.stateNamespace);
    const state = (await store.load(h.app))!;
    const unkeyed = new Engine({ client: h.kube, discovery: new Discovery(h.kube) });
    const versions = new Map<string, string | undefined>();
    for (const e of state.inventory) {
      const live = await liveOf(h, e.key);
      versions.set(e.key, String(live.metadata.resourceVersion));
      e.fp = unkeyed.fingerprint(live);
      delete e.dh;
    }
    state.hashKeyId = undefined;
    await store.save(state);

    await h.restart();
    const first = await h.cycle();
    expect(first.kind).toBe("unchanged");
    const c = h.counts();
    expect(c.dryRuns).toBe(6);
    expect(c.writes).toBe(1); // the state record, with keyed hashes
    for (const e of state.inventory) expect((await liveOf(h, e.key)).metadata.resourceVersion).toBe(versions.get(e.key));

    const after = await store.load(h.app);
    expect(after?.hashKeyId).not.toBe("");
    expect(after?.hashKeyId).toBeDefined();
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts()).toMatchObject({ writes: 0, dryRuns: 0 });
  });
});
