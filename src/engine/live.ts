import type { KubeClient } from "../kube/client.js";
import { resourcePath, type Discovery, type ResourceMapping } from "../kube/discovery.js";
import { idKey, parseIdKey } from "../manifests/identity.js";
import type { InventoryEntry } from "./inventory.js";
import type { KubeObject } from "../types.js";
import { mapLimit } from "../util/pool.js";
import { ownerSelector } from "./marks.js";

export interface ListTarget {
  mapping: ResourceMapping;
  namespace: string;
}

interface ObjectList {
  metadata?: { continue?: string };
  items?: KubeObject[];
}

const PAGE = 2000;

/**
 * The (kind, namespace) LISTs that cover an inventory. An inventory of 10k objects holds a few
 * pairs: each key's pair is its text up to the name, and only a pair's first key is parsed.
 */
export function inventoryTargets(discovery: Discovery, inventory: readonly InventoryEntry[]): ListTarget[] {
  const pairs = new Map<string, ListTarget | undefined>();
  // An app's kinds come interleaved (a ConfigMap, a Task, a ConfigMap...): per apiVersion, the
  // pair of the key before mostly holds this one too, and costs no string to find.
  const lastOf = new Map<string, string>();
  for (const e of inventory) {
    const last = lastOf.get(e.apiVersion);
    if (last !== undefined && e.key.startsWith(last) && e.key.indexOf("/", last.length) === -1) continue;
    const prefix = e.key.slice(0, e.key.lastIndexOf("/") + 1);
    lastOf.set(e.apiVersion, prefix);
    const pair = `${e.apiVersion} ${prefix}`;
    if (pairs.has(pair)) continue;
    const id = parseIdKey(e.key);
    const mapping = discovery.lookup(e.apiVersion, id.kind);
    pairs.set(pair, mapping ? { mapping, namespace: id.namespace } : undefined);
  }
  return [...pairs.values()].filter((t): t is ListTarget => t !== undefined);
}

/** The (kind, namespace) LISTs that cover resolved resources, one per pair. */
export function resourceTargets(resources: readonly { mapping: ResourceMapping; id: { namespace: string }; pendingKind: boolean }[]): ListTarget[] {
  const byMapping = new Map<ResourceMapping, Set<string>>();
  for (const r of resources) {
    if (r.pendingKind) continue;
    const namespaces = byMapping.get(r.mapping);
    if (namespaces) namespaces.add(r.id.namespace);
    else byMapping.set(r.mapping, new Set([r.id.namespace]));
  }
  return [...byMapping].flatMap(([mapping, namespaces]) => [...namespaces].map((namespace) => ({ mapping, namespace })));
}

/** One LIST's identity: resource and namespace (none for cluster-scoped kinds). */
export function targetKey(t: ListTarget): string {
  return `${t.mapping.group}/${t.mapping.version}/${t.mapping.resource}/${t.mapping.namespaced ? t.namespace : ""}`;
}

/**
 * The owner's live objects, one LIST per (kind, namespace) — the cost of looking grows with the
 * pairs, never with the objects. Returns objects keyed like the inventory.
 */
export async function listOwned(client: KubeClient, owner: string, targets: ListTarget[], concurrency: number): Promise<Map<string, KubeObject>> {
  const unique = new Map<string, ListTarget>();
  for (const t of targets) unique.set(targetKey(t), { mapping: t.mapping, namespace: t.mapping.namespaced ? t.namespace : "" });
  const live = new Map<string, KubeObject>();
  await mapLimit([...unique.values()], concurrency, async ({ mapping, namespace }) => {
    let cont: string | undefined;
    do {
      const res = await client.request<ObjectList>({
        method: "GET",
        list: true,
        path: resourcePath(mapping, namespace),
        query: { labelSelector: ownerSelector(owner), limit: String(PAGE), continue: cont },
      });
      for (const o of res.body.items ?? []) {
        const key = idKey({
          group: mapping.group,
          version: mapping.version,
          kind: mapping.kind,
          namespace: o.metadata.namespace ?? "",
          name: o.metadata.name,
        });
        // LIST items carry neither apiVersion nor kind; give them back so they read like a GET
        // (in place: the parsed page is ours, and a copy per object adds up at 10k objects).
        o.apiVersion = mapping.group ? `${mapping.group}/${mapping.version}` : mapping.version;
        o.kind = mapping.kind;
        live.set(key, o);
      }
      cont = res.body.metadata?.continue || undefined;
    } while (cont);
  });
  return live;
}

/** Above this many objects of one (kind, namespace) to look up, one paged LIST beats a GET each. */
export const LIST_INSTEAD_OF_GET = 16;

/**
 * Objects that are not (yet) the owner's, by key: whatever else holds those names now (kubectl's,
 * another app's), or nothing. Only first deploys and newly added objects get here. Few of one
 * (kind, namespace): a GET each; many: one unfiltered paged LIST, keeping only the names asked for.
 */
export async function lookUp(
  client: KubeClient,
  wanted: { key: string; mapping: ResourceMapping; namespace: string; name: string }[],
  concurrency: number,
): Promise<Map<string, KubeObject>> {
  const groups = new Map<string, { mapping: ResourceMapping; namespace: string; items: typeof wanted }>();
  for (const w of wanted) {
    const ns = w.mapping.namespaced ? w.namespace : "";
    const g = `${w.mapping.group}/${w.mapping.version}/${w.mapping.resource}/${ns}`;
    const entry = groups.get(g);
    if (entry) entry.items.push(w);
    else groups.set(g, { mapping: w.mapping, namespace: ns, items: [w] });
  }
  const found = new Map<string, KubeObject>();
  const apiVersion = (m: ResourceMapping) => (m.group ? `${m.group}/${m.version}` : m.version);
  const small = [...groups.values()].filter((g) => g.items.length < LIST_INSTEAD_OF_GET).flatMap((g) => g.items);
  const large = [...groups.values()].filter((g) => g.items.length >= LIST_INSTEAD_OF_GET);
  await mapLimit(small, concurrency, async (w) => {
    const obj = await client.getOptional<KubeObject>(resourcePath(w.mapping, w.namespace, w.name));
    if (obj) found.set(w.key, obj);
  });
  await mapLimit(large, concurrency, async ({ mapping, namespace, items }) => {
    const byName = new Map(items.map((w) => [w.name, w.key]));
    let cont: string | undefined;
    do {
      const res = await client.request<ObjectList>({ method: "GET", list: true, path: resourcePath(mapping, namespace), query: { limit: String(PAGE), continue: cont } });
      for (const o of res.body.items ?? []) {
        const key = byName.get(o.metadata.name);
        if (key) found.set(key, { ...o, apiVersion: apiVersion(mapping), kind: mapping.kind });
      }
      cont = res.body.metadata?.continue || undefined;
    } while (cont);
  });
  return found;
}
