import { KubeApiError, type KubeClient } from "./client.js";

/** Creates a namespace unless it exists (plumber's own state namespace, on first write). */
export async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  const ns = await client.getOptional(`/api/v1/namespaces/${encodeURIComponent(name)}`);
  if (ns) return;
  try {
    await client.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }),
    });
  } catch (e) {
    if (!(e instanceof KubeApiError && e.conflict)) throw e;
  }
}
