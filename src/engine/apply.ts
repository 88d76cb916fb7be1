import type { KubeClient } from "../kube/client.js";
import { KubeApiError } from "../kube/client.js";
import { resourcePath } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import { sleep } from "../util/pool.js";
import type { Resource } from "./resource.js";
import { planTakeover, type Takeover } from "./takeover.js";

export interface ApplyOptions {
  fieldManager: string;
  dryRun?: boolean;
}

export interface Applied {
  object: KubeObject;
  /** The server's Warning headers for this request. */
  warnings: string[];
  /** The apply created the object (201), rather than changing one that was there (200). */
  created?: boolean;
}

/**
 * One server-side apply. The manifest goes out as written (JSON is YAML): no typed model sits
 * between it and the server to drop fields. Strict field validation makes typos fail the plan.
 */
export async function applyOne(client: KubeClient, r: Resource, opts: ApplyOptions): Promise<Applied> {
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
  return { object: res.body, warnings: res.warnings, created: res.status === 201 };
}

/** A dry-run create leaves resourceVersion empty: that is how plan tells created from configured. */
export function existedBefore(serverObject: KubeObject): boolean {
  const rv = serverObject.metadata?.resourceVersion;
  return typeof rv === "string" && rv !== "";
}

/**
 * Makes plumber the owner of what kubectl set (takeover.ts). A write between our read and this
 * patch fails its resourceVersion test: read again and retry once, unless `retry` is false (the
 * read was the ownership check's, which a fresh read would skip). Returns what was taken over and
 * the object's resourceVersion after it.
 */
export async function takeOver(
  client: KubeClient,
  r: Resource,
  t: Takeover,
  fieldManager: string,
  retry = true,
): Promise<(Takeover & { resourceVersion?: string }) | undefined> {
  const path = resourcePath(r.mapping, r.id.namespace, r.id.name);
  const send = async (x: Takeover) => {
    const res = await client.request<KubeObject>({ method: "PATCH", path, query: { fieldManager }, contentType: "application/json-patch+json", body: JSON.stringify(x.patch) });
    const rv = res.body?.metadata?.resourceVersion;
    return { ...x, resourceVersion: typeof rv === "string" ? rv : undefined };
  };
  try {
    return await send(t);
  } catch (e) {
    if (!retry || !(e instanceof KubeApiError) || (e.status !== 409 && e.status !== 422)) throw e;
    const fresh = planTakeover(await client.getOptional<KubeObject>(path), fieldManager);
    return fresh ? await send(fresh) : undefined;
  }
}

/**
 * What a delete-and-recreate would do, without doing it: a dry-run delete of the live object
 * (permissions, admission) and a dry-run create of the manifest under a generated name (every
 * create-time validation; the live object still holds the real name).
 */
export async function dryRunRecreate(client: KubeClient, r: Resource, fieldManager: string): Promise<Applied> {
  const warnings: string[] = [];
  const del = await client.request({
    method: "DELETE",
    path: resourcePath(r.mapping, r.id.namespace, r.id.name),
    query: { dryRun: "All", propagationPolicy: "Background" },
  });
  warnings.push(...del.warnings);
  const created = await dryRunCreateFresh(client, r, fieldManager);
  return { object: created.object, warnings: [...warnings, ...created.warnings] };
}

/** The manifest as a fresh create would store it (dry-run, generated name, then renamed back). */
export async function dryRunCreateFresh(client: KubeClient, r: Resource, fieldManager: string): Promise<Applied> {
  const warnings: string[] = [];
  const { name: _name, ...metadata } = r.object.metadata;
  const body = { ...r.object, metadata: { ...metadata, generateName: `${r.id.name.slice(0, 52)}-` } };
  const created = await client.request<KubeObject>({
    method: "POST",
    path: resourcePath(r.mapping, r.id.namespace),
    query: { dryRun: "All", fieldManager, fieldValidation: "Strict" },
    body: JSON.stringify(body),
  });
  warnings.push(...created.warnings);
  const object = { ...created.body, metadata: { ...created.body.metadata, name: r.id.name } };
  delete (object.metadata as Record<string, unknown>).generateName;
  return { object, warnings };
}

/**
 * Deletes the live object (only that one: a uid precondition) and waits until it is gone, so the
 * apply that follows creates it anew. Finalizers may hold it: bounded by timeoutMs.
 */
export async function deleteForRecreate(client: KubeClient, r: Resource, uid: string | undefined, timeoutMs: number): Promise<string[]> {
  const path = resourcePath(r.mapping, r.id.namespace, r.id.name);
  let warnings: string[] = [];
  try {
    const res = await client.request({
      method: "DELETE",
      path,
      query: { propagationPolicy: "Background" },
      contentType: "application/json",
      body: JSON.stringify({ apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", ...(uid ? { preconditions: { uid } } : {}) }),
    });
    warnings = res.warnings;
  } catch (e) {
    if (!(e instanceof KubeApiError && e.notFound)) throw e;
  }
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    const obj = await client.getOptional<KubeObject>(path);
    if (!obj || (uid && obj.metadata.uid !== uid)) return warnings;
    if (Date.now() > deadline) throw new Error(`${r.subject}: still present ${timeoutMs} ms after delete (finalizers: ${JSON.stringify(obj.metadata.finalizers ?? [])})`);
    await sleep(delay);
  }
}
