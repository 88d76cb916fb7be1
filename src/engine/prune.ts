import type { KubeClient } from "../kube/client.js";
import { KubeApiError } from "../kube/client.js";
import { resourcePath, type ResourceMapping } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import { carriesMarks, OWNER_LABEL } from "./marks.js";

/** How often a delete is tried again after someone wrote the object between the LIST and the delete. */
const RETRIES = 3;

/**
 * Deletes one object, only as prune last read it with `owner`'s marks: the delete carries its
 * resourceVersion, so a write in between (another app adopting it) makes the apiserver refuse it.
 * Then it is read again: still `owner`'s, deleted; another's or nobody's now, left alone ("kept",
 * with its current owner, if any). Gone already counts as done. Background propagation, as kubectl does.
 */
export async function deleteOne(client: KubeClient, mapping: ResourceMapping, live: KubeObject, owner: string): Promise<"deleted" | "gone" | { kept: string }> {
  const path = resourcePath(mapping, live.metadata.namespace ?? "", live.metadata.name);
  let rv = live.metadata.resourceVersion;
  for (let attempt = 1; ; attempt++) {
    try {
      await client.request({
        method: "DELETE",
        path,
        query: { propagationPolicy: "Background" },
        contentType: "application/json",
        body: JSON.stringify({ apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", ...(rv ? { preconditions: { resourceVersion: rv } } : {}) }),
      });
      return "deleted";
    } catch (e) {
      if (e instanceof KubeApiError && e.notFound) return "gone";
      if (!(e instanceof KubeApiError && e.status === 409) || attempt >= RETRIES) throw e;
      const fresh = await client.getOptional<KubeObject>(path);
      if (!fresh) return "gone";
      if (!carriesMarks(fresh, owner)) return { kept: fresh.metadata.labels?.[OWNER_LABEL] ?? "" };
      rv = typeof fresh.metadata.resourceVersion === "string" ? fresh.metadata.resourceVersion : undefined;
    }
  }
}
