import type { KubeClient } from "../kube/client.js";
import { resourcePath, type Discovery } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import { carriesMarks } from "./marks.js";
import { healthOf } from "../health/index.js";
import { parseIdKey } from "../manifests/identity.js";
import { mapLimit, sleep } from "../util/pool.js";
import { subjectOf } from "./changeset.js";
import type { InventoryEntry } from "./inventory.js";
import { inventoryTargets, LIST_INSTEAD_OF_GET, listOwned, type ListTarget } from "./live.js";

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

/** The (kind, namespace) LISTs that cover an inventory. */
async function healthTargets(discovery: Discovery, inventory: InventoryEntry[]): Promise<ListTarget[]> {
  await discovery.ensureLoaded();
  return inventoryTargets(discovery, inventory);
}

/**
 * What the sync just before this look saw of the objects it did not write (its LIST of this same
 * cycle): they stand in for a second LIST, and only the objects it wrote are read again, one GET
 * each, when there are few of them. A one-line commit to a 10k-object app then looks at one
 * object, not 10k; a first apply (everything written) lists as before.
 */
export interface SeenObjects {
  objects: Map<string, KubeObject>;
}

async function liveFor(client: KubeClient, discovery: Discovery, owner: string, inventory: InventoryEntry[], targets: ListTarget[], concurrency: number, seen: SeenObjects | undefined): Promise<Map<string, KubeObject>> {
  const unseen = seen ? inventory.filter((e) => !seen.objects.has(e.key)) : inventory;
  if (!seen || unseen.length >= LIST_INSTEAD_OF_GET) return listOwned(client, owner, targets, concurrency);
  const live = new Map<string, KubeObject>();
  for (const e of inventory) {
    const obj = seen.objects.get(e.key);
    if (obj) live.set(e.key, obj);
  }
  await mapLimit(unseen, concurrency, async (e) => {
    const id = parseIdKey(e.key);
    const mapping = discovery.lookup(e.apiVersion, id.kind);
    if (!mapping) return;
    const obj = await client.getOptional<KubeObject>(resourcePath(mapping, id.namespace, id.name));
    // Like the LIST: only what still carries the owner's marks counts as there.
    if (obj && carriesMarks(obj, owner)) live.set(e.key, obj);
  });
  return live;
}

/** One look at an inventory's health: healthy, Failed (final), or not yet (InProgress, Missing). */
async function lookOnce(
  client: KubeClient,
  discovery: Discovery,
  owner: string,
  inventory: InventoryEntry[],
  targets: ListTarget[],
  concurrency: number,
  seen?: SeenObjects,
): Promise<{ verdict: "healthy" | "failed" | "pending"; unhealthy: ObjectHealth[] }> {
  const live = await liveFor(client, discovery, owner, inventory, targets, concurrency, seen);
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
  if (unhealthy.length === 0) return { verdict: "healthy", unhealthy };
  if (unhealthy.some((u) => u.status === "Failed")) return { verdict: "failed", unhealthy: unhealthy.filter((u) => u.status === "Failed") };
  return { verdict: "pending", unhealthy };
}

/**
 * One look for a verify that waits across cycles: a report when the inventory is healthy or any
 * object Failed, or when `deadlinePassed` and it is still not ready (timed out); undefined: look
 * again next cycle.
 */
export async function checkHealthOnce(
  client: KubeClient,
  discovery: Discovery,
  owner: string,
  inventory: InventoryEntry[],
  opts: { deadlinePassed: boolean; concurrency?: number; seen?: SeenObjects },
): Promise<HealthReport | undefined> {
  const targets = await healthTargets(discovery, inventory);
  const r = await lookOnce(client, discovery, owner, inventory, targets, opts.concurrency ?? 8, opts.seen);
  if (r.verdict === "healthy") return { healthy: true, unhealthy: [], timedOut: false };
  if (r.verdict === "failed") return { healthy: false, unhealthy: r.unhealthy, timedOut: false };
  return opts.deadlinePassed ? { healthy: false, unhealthy: r.unhealthy, timedOut: true } : undefined;
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
  opts: { timeoutMs: number; signal?: AbortSignal; concurrency?: number; pollMs?: number; seen?: SeenObjects },
): Promise<HealthReport> {
  const targets = await healthTargets(discovery, inventory);
  const deadline = Date.now() + opts.timeoutMs;
  for (let delay = 100, first = true; ; delay = Math.min(delay * 2, opts.pollMs ?? 1000), first = false) {
    if (opts.signal?.aborted) throw new AbortedError();
    // Only the first look may stand on what the sync saw; every later one looks afresh.
    const r = await lookOnce(client, discovery, owner, inventory, targets, opts.concurrency ?? 8, first ? opts.seen : undefined);
    if (r.verdict === "healthy") return { healthy: true, unhealthy: r.unhealthy, timedOut: false };
    if (r.verdict === "failed") return { healthy: false, unhealthy: r.unhealthy, timedOut: false };
    if (Date.now() >= deadline) return { healthy: false, unhealthy: r.unhealthy, timedOut: true };
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
