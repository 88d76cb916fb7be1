import type { KubeClient } from "../kube/client.js";
import { resourcePath } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import type { Resource } from "./resource.js";

export interface ApplyOptions {
  fieldManager: string;
  dryRun?: boolean;
}

/**
 * One server-side apply. The manifest goes out as written (JSON is YAML): no typed model sits
 * between it and the server to drop fields. Strict field validation makes typos fail the plan.
 */
export async function applyOne(client: KubeClient, r: Resource, opts: ApplyOptions): Promise<KubeObject> {
  const res = await client.request<KubeObject>({
    method: "PATCH",
    path: resourcePath(r.mapping, r.id.namespace, r.id.name),
    query: {
      fieldManager: opts.fieldManager,
      force: "true",
      fieldValidation: "Strict",
      dryRun: opts.dryRun ? "All" : undefined,
    },
    contentType: "application/apply-patch+yaml",
    body: JSON.stringify(r.object),
  });
  return res.body;
}

/** A dry-run create leaves resourceVersion empty: that is how plan tells created from configured. */
export function existedBefore(serverObject: KubeObject): boolean {
  const rv = serverObject.metadata?.resourceVersion;
  return typeof rv === "string" && rv !== "";
}
