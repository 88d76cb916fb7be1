import type { KubeClient } from "../kube/client.js";
import { KubeApiError } from "../kube/client.js";
import { resourcePath, type ResourceMapping } from "../kube/discovery.js";

/** Deletes one object; gone already counts as done. Background propagation, as kubectl does. */
export async function deleteOne(client: KubeClient, mapping: ResourceMapping, namespace: string, name: string): Promise<"deleted" | "gone"> {
  try {
    await client.request({
      method: "DELETE",
      path: resourcePath(mapping, namespace, name),
      query: { propagationPolicy: "Background" },
    });
    return "deleted";
  } catch (e) {
    if (e instanceof KubeApiError && e.notFound) return "gone";
    throw e;
  }
}
