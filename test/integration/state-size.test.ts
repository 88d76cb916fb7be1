// An app's state at fleet size (real apiserver): an inventory too big for one ConfigMap is split
// into chunk objects of one generation, switched to in one write of the main record, so a kill at
// any point leaves a whole inventory behind; a record naming missing chunks refuses to load.
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import type { InventoryEntry } from "../../src/engine/inventory.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { CHUNK_BYTES, chunkObjectName } from "../../src/state/chunks.js";
import { StateStore, emptyState, stateObjectName, type AppState } from "../../src/state/store.js";
import { testEnv, uniqueName } from "../setup/env.js";

type Cm = { metadata: { name: string }; data?: Record<string, string>; binaryData?: Record<string, string> };

const open: KubeClient[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

async function client(): Promise<KubeClient> {
  const c = await KubeClient.create(loadKubeConfig({ kubeconfig: testEnv().kubeconfigPath }));
  open.push(c);
  return c;
}

const KINDS = [["apps", "Deployment", "apps/v1"], ["", "Service", "v1"], ["", "ConfigMap", "v1"], ["networking.k8s.io", "Ingress", "networking.k8s.io/v1"]] as const;

/** Realistic keys, random hashes (which do not compress): what a 20k-object app stores. */
function inventory(n: number): InventoryEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const [group, kind, apiVersion] = KINDS[i % KINDS.length]!;
    return { key: `${group}/${kind}/team-${(i >> 7) % 40}/service-${Math.floor(i / KINDS.length)}`, apiVersion, fp: randomBytes(32).toString("hex"), dh: randomBytes(32).toString("hex") };
  });
}

function stateOf(app: string, inv: InventoryEntry[], revision = "a".repeat(40)): AppState {
  return { ...emptyState(app), phase: "Ready", revision, goodRevision: revision, inventory: inv };
}

async function chunks(kube: KubeClient, ns: string, app: string): Promise<Cm[]> {
  const res = await kube.request<{ items: Cm[] }>({ method: "GET", path: `/api/v1/namespaces/${ns}/configmaps`, query: { labelSelector: `plumber.dev/state-chunk-of=${app}` } });
  return res.body.items;
}

const cmPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;

describe("state of a 20k-object app", () => {
  it("saves across chunk objects under the object limit and loads whole, in a bounded number of requests", async () => {
    const kube = await client();
    const ns = uniqueName("state");
    const app = "big";
    const store = new StateStore(kube, ns);
    const inv = inventory(20_000);
    await store.save(stateOf(app, inv));

    const main = await kube.getOptional<Cm>(cmPath(ns, stateObjectName(app)));
    expect(main?.binaryData?.["inventory.json.gz"]).toBeUndefined();
    expect(main?.data?.inventoryEntries).toBe("20000");
    const parts = await chunks(kube, ns, app);
    expect(parts.length).toBe(Number(main?.data?.inventoryChunks));
    expect(parts.length).toBeGreaterThan(1);
    for (const c of parts) {
      expect(c.metadata.name.startsWith(`${stateObjectName(app)}.${main?.data?.inventoryGeneration}.`)).toBe(true);
      // The apiserver counts binaryData decoded against the 1 MiB limit.
      expect(Buffer.from(c.binaryData?.["inventory.json.gz.part"] ?? "", "base64").length).toBeLessThanOrEqual(CHUNK_BYTES);
    }

    const fresh = new StateStore(kube, ns);
    const loaded = await fresh.load(app);
    expect(loaded?.inventory).toEqual(inv);
    expect(loaded?.phase).toBe("Ready");

    // A status-only save (the inventory unchanged) is one write; a new inventory replaces the generation.
    await fresh.save({ ...stateOf(app, inv), updatedAt: "then" }); // and the namespace check each store makes once
    let before = kube.stats.snapshot();
    await fresh.save({ ...stateOf(app, inv), updatedAt: "now" });
    expect(kube.stats.total - before.total).toBe(1);
    const next = inv.map((e, i) => (i === 0 ? { ...e, fp: "0".repeat(64) } : e));
    before = kube.stats.snapshot();
    await fresh.save(stateOf(app, next));
    const cost = kube.stats.total - before.total;
    // list + n chunk writes + the switch + n deletes of the old generation
    expect(cost).toBe(1 + parts.length + 1 + parts.length);
    const after = await chunks(kube, ns, app);
    expect(after.length).toBe(parts.length);
    expect(after.some((c) => parts.some((p) => p.metadata.name === c.metadata.name))).toBe(false);
    expect((await new StateStore(kube, ns).load(app))?.inventory).toEqual(next);

    // Shrinking back to what one object holds: the inventory moves into the record, the chunks go.
    await fresh.save(stateOf(app, inv.slice(0, 100)));
    const small = await kube.getOptional<Cm>(cmPath(ns, stateObjectName(app)));
    expect(small?.data?.inventoryGeneration).toBeUndefined();
    expect(small?.binaryData?.["inventory.json.gz"]).toBeDefined();
    expect(await chunks(kube, ns, app)).toEqual([]);
    expect((await new StateStore(kube, ns).load(app))?.inventory).toEqual(inv.slice(0, 100));
  });

  it("a crash between the chunk writes and the switch leaves the old generation in force, loaded intact", async () => {
    const kube = await client();
    const ns = uniqueName("state");
    const app = "crashy";
    const old = inventory(20_000);
    await new StateStore(kube, ns).save(stateOf(app, old, "1".repeat(40)));

    // The kill: every chunk of the new generation is written, the main record never is.
    const mainPath = cmPath(ns, stateObjectName(app));
    kube.writeGate = (req) => (req.method === "PATCH" && req.path === mainPath ? "killed before the switch" : undefined);
    const next = inventory(20_000);
    await expect(new StateStore(kube, ns).save(stateOf(app, next, "2".repeat(40)))).rejects.toThrow(/killed before the switch/);
    kube.writeGate = undefined;
    const generations = new Set((await chunks(kube, ns, app)).map((c) => c.data?.generation));
    expect(generations.size).toBe(2);

    const restarted = new StateStore(kube, ns);
    const loaded = await restarted.load(app);
    expect(loaded?.revision).toBe("1".repeat(40));
    expect(loaded?.inventory).toEqual(old);
    // The next save clears what the crash left behind.
    await restarted.save(stateOf(app, next, "2".repeat(40)));
    expect(new Set((await chunks(kube, ns, app)).map((c) => c.data?.generation)).size).toBe(1);
    expect((await new StateStore(kube, ns).load(app))?.inventory).toEqual(next);
  });

  it("a record pointing to a missing chunk fails the load with the app's name, never a partial inventory", async () => {
    const kube = await client();
    const ns = uniqueName("state");
    const app = "holey";
    await new StateStore(kube, ns).save(stateOf(app, inventory(20_000)));
    const main = await kube.getOptional<Cm>(cmPath(ns, stateObjectName(app)));
    const gone = chunkObjectName(app, main?.data?.inventoryGeneration ?? "", 1);
    await kube.request({ method: "DELETE", path: cmPath(ns, gone) });
    await expect(new StateStore(kube, ns).load(app)).rejects.toThrow(new RegExp(`state of app "${app}".*ConfigMap ${gone.replace(/\./g, "\\.")} is missing.*refusing to load a partial inventory`));
  });

  it("a reader racing a save that replaces the generation reads the new one whole", async () => {
    const writer = await client();
    const reader = await client();
    const ns = uniqueName("state");
    const app = "raced";
    const store = new StateStore(writer, ns);
    await store.save(stateOf(app, inventory(20_000), "1".repeat(40)));
    const next = inventory(20_000);
    // The writer's whole save (new chunks, switch, old chunks deleted) lands between the reader's
    // GET of the record and its GETs of the chunks the record named.
    const get = reader.getOptional.bind(reader);
    let raced = false;
    reader.getOptional = async <T>(path: string): Promise<T | undefined> => {
      const res = await get<T>(path);
      if (!raced && path.endsWith(`/${stateObjectName(app)}`)) {
        raced = true;
        await store.save(stateOf(app, next, "2".repeat(40)));
      }
      return res;
    };
    const loaded = await new StateStore(reader, ns).load(app);
    expect(raced).toBe(true);
    expect(loaded?.revision).toBe("2".repeat(40));
    expect(loaded?.inventory).toEqual(next);
  });

  it("state written before chunking loads unchanged, and a small app stays in one object", async () => {
    const kube = await client();
    const ns = uniqueName("state");
    const app = "old";
    const inv = inventory(50);
    const store = new StateStore(kube, ns);
    await store.save(emptyState("bootstrap")); // creates the namespace
    // Exactly what the store wrote before chunking existed.
    await kube.request({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/configmaps`,
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: stateObjectName(app), namespace: ns, labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "app" } },
        data: { app, history: "[]", phase: "Ready", revision: "r1", goodRevision: "r1" },
        binaryData: { "inventory.json.gz": gzipSync(JSON.stringify(inv)).toString("base64") },
      }),
    });
    const loaded = await store.load(app);
    expect(loaded?.inventory).toEqual(inv);
    expect(loaded?.phase).toBe("Ready");

    const before = kube.stats.snapshot();
    await store.save(stateOf(app, inventory(60)));
    await store.save(stateOf(app, inventory(70)));
    expect(kube.stats.total - before.total).toBe(2);
    expect(await chunks(kube, ns, app)).toEqual([]);

    // 12k entries fitted in one object before chunking existed: they still do, as before.
    const fitted = inventory(12_000);
    await store.save(stateOf(app, fitted));
    expect((await kube.getOptional<Cm>(cmPath(ns, stateObjectName(app))))?.binaryData?.["inventory.json.gz"]).toBeDefined();
    expect(await chunks(kube, ns, app)).toEqual([]);
    expect((await new StateStore(kube, ns).load(app))?.inventory).toEqual(fitted);
  });
});
