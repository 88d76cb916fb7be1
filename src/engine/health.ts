import type { KubeClient } from "../kube/client.js";
import type { Discovery } from "../kube/discovery.js";
import { healthOf } from "../health/index.js";
import { parseIdKey } from "../manifests/identity.js";
import { sleep } from "../util/pool.js";
import { subjectOf } from "./changeset.js";
import type { InventoryEntry } from "./inventory.js";
import { listOwned, type ListTarget } from "./live.js";

export interface ObjectHealth {
  key: string;
  subject: string;
  status: "Current" | "InProgress" | "Failed" | "Missing";
  reason: string;
  message: string;
}

export interface HealthReport {
  healthy: boolean;
  /** Why not: the objects that are not Current, with their reasons. */
  unhealthy: ObjectHealth[];
  timedOut: boolean;
}

export class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortedError";
  }
}

/**
 * Waits until every object of an inventory is ready (kstatus rules in src/health), any is Failed,
 * or the timeout passes. One LIST per (kind, namespace) per poll, like drift detection.
 */
export async function waitHealthy(
  client: KubeClient,
  discovery: Discovery,
  owner: string,
  inventory: InventoryEntry[],
  opts: { timeoutMs: number; signal?: AbortSignal; concurrency?: number; pollMs?: number },
): Promise<HealthReport> {
  await discovery.ensureLoaded();
  const targets: ListTarget[] = [];
  for (const e of inventory) {
    const id = parseIdKey(e.key);
    const mapping = discovery.lookup(e.apiVersion, id.kind);
    if (mapping) targets.push({ mapping, namespace: id.namespace });
  }
  const deadline = Date.now() + opts.timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, opts.pollMs ?? 1000)) {
    if (opts.signal?.aborted) throw new AbortedError();
    const live = await listOwned(client, owner, targets, opts.concurrency ?? 8);
    const unhealthy: ObjectHealth[] = [];
    for (const e of inventory) {
      const id = parseIdKey(e.key);
      const subject = subjectOf(id.kind, id.namespace, id.name);
      const obj = live.get(e.key);
      if (!obj) {
        unhealthy.push({ key: e.key, subject, status: "Missing", reason: "NotFound", message: "the object is gone" });
        continue;
      }
      const h = healthOf({ ...obj, apiVersion: e.apiVersion, kind: id.kind });
      if (h.status !== "Current") unhealthy.push({ key: e.key, subject, status: h.status, reason: h.reason, message: h.message });
    }
    if (unhealthy.length === 0) return { healthy: true, unhealthy, timedOut: false };
    if (unhealthy.some((u) => u.status === "Failed")) return { healthy: false, unhealthy: unhealthy.filter((u) => u.status === "Failed"), timedOut: false };
    if (Date.now() >= deadline) return { healthy: false, unhealthy, timedOut: true };
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), opts.signal);
  }
}

export function describeHealth(r: HealthReport, timeoutMs: number): string {
  const list = r.unhealthy
    .slice(0, 10)
    .map((u) => `${u.subject}: ${u.status} (${u.reason}${u.message ? `: ${u.message}` : ""})`)
    .join("; ");
  const more = r.unhealthy.length > 10 ? ` and ${r.unhealthy.length - 10} more` : "";
  return r.timedOut ? `not healthy after ${Math.round(timeoutMs / 1000)}s: ${list}${more}` : `unhealthy: ${list}${more}`;
}
