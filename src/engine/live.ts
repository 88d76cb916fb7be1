import type { KubeClient } from "../kube/client.js";
import { resourcePath, type ResourceMapping } from "../kube/discovery.js";
import { idKey } from "../manifests/identity.js";
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

const PAGE = 500;

/**
 * The owner's live objects, one LIST per (kind, namespace) — the cost of looking grows with the
 * pairs, never with the objects. Returns objects keyed like the inventory.
 */
export async function listOwned(client: KubeClient, owner: string, targets: ListTarget[], concurrency: number): Promise<Map<string, KubeObject>> {
  const unique = new Map<string, ListTarget>();
  for (const t of targets) {
    const ns = t.mapping.namespaced ? t.namespace : "";
    unique.set(`${t.mapping.group}/${t.mapping.version}/${t.mapping.resource}/${ns}`, { mapping: t.mapping, namespace: ns });
  }
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
        // LIST items carry neither apiVersion nor kind; give them back so they read like a GET.
        live.set(key, { ...o, apiVersion: mapping.group ? `${mapping.group}/${mapping.version}` : mapping.version, kind: mapping.kind });
      }
      cont = res.body.metadata?.continue || undefined;
    } while (cont);
  });
  return live;
}
