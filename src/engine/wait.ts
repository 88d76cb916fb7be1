import type { KubeClient } from "../kube/client.js";
import { sleep } from "../util/pool.js";

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

/** Waits until a CRD is Established, so the kinds it defines can be applied. */
export async function waitCrdEstablished(client: KubeClient, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "not found";
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    const crd = await client.getOptional<{ status?: { conditions?: Condition[] } }>(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${encodeURIComponent(name)}`,
    );
    const conds = crd?.status?.conditions ?? [];
    const established = conds.find((c) => c.type === "Established");
    if (established?.status === "True") return;
    const rejected = conds.find((c) => c.type === "NamesAccepted" && c.status === "False");
    if (rejected) throw new Error(`CustomResourceDefinition ${name}: names not accepted: ${rejected.message ?? rejected.reason}`);
    if (crd) last = established ? `${established.reason ?? ""} ${established.message ?? ""}`.trim() : "no Established condition yet";
    if (Date.now() > deadline) throw new Error(`CustomResourceDefinition ${name} not established after ${timeoutMs} ms: ${last}`);
    await sleep(delay);
  }
}
