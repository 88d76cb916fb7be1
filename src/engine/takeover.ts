// Taking over from client-side `kubectl apply` (and kubectl edit), after fluxcd/pkg/ssa.
//
// An object kubectl applied client-side has its fields recorded under Update entries of managers
// such as kubectl-client-side-apply. A server-side apply by plumber then shares or adds fields but
// never removes one of those: a field the repo drops stays forever. Renaming those managers'
// Update entries to plumber's Apply entry makes plumber the owner of every field they set, so the
// next apply removes what the manifest no longer has. The last-applied annotation goes with it:
// it would otherwise make a later `kubectl apply` three-way-merge against a stale config.

import type { KubeObject } from "../types.js";
import { fieldsMissingFrom, managerFields, mergeFields, removeFields, restoreFields, type FieldsV1 } from "./fields.js";

export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/** Managers whose fields plumber takes over: client-side apply, old kubectl, kubectl edit, and the
 *  synthetic owner the apiserver records for objects created before managedFields existed. */
export const TAKEOVER_MANAGERS: readonly string[] = ["kubectl-client-side-apply", "kubectl", "kubectl-edit", "before-first-apply"];

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  [k: string]: unknown;
}

export interface Takeover {
  /** Managers whose Update entries become plumber's Apply entry. */
  managers: string[];
  /** Whether the last-applied annotation is dropped. */
  dropsLastApplied: boolean;
  /** RFC 6902 patch for the live object (application/json-patch+json). */
  patch: unknown[];
}

function takenOver(e: ManagedFieldsEntry): boolean {
  return e.operation === "Update" && (e.subresource ?? "") === "" && typeof e.manager === "string" && TAKEOVER_MANAGERS.includes(e.manager);
}

/** What taking `live` over means, or undefined when kubectl left nothing to take. */
export function planTakeover(live: KubeObject | undefined, fieldManager: string): Takeover | undefined {
  if (!live) return undefined;
  const entries = Array.isArray(live.metadata.managedFields) ? (live.metadata.managedFields as ManagedFieldsEntry[]) : [];
  const managers = [...new Set(entries.filter(takenOver).map((e) => e.manager as string))];
  const dropsLastApplied = live.metadata.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined;
  if (managers.length === 0 && !dropsLastApplied) return undefined;
  const patch: unknown[] = [];
  // Guard against a write between our read and this patch: the server refuses a stale test.
  if (typeof live.metadata.resourceVersion === "string") patch.push({ op: "test", path: "/metadata/resourceVersion", value: live.metadata.resourceVersion });
  if (managers.length > 0) {
    const renamed = entries.map((e) => (takenOver(e) ? { ...e, manager: fieldManager, operation: "Apply" } : e));
    patch.push({ op: "replace", path: "/metadata/managedFields", value: renamed });
  }
  if (dropsLastApplied) patch.push({ op: "remove", path: `/metadata/annotations/${LAST_APPLIED_ANNOTATION.replace(/~/g, "~0").replace(/\//g, "~1")}` });
  return { managers, dropsLastApplied, patch };
}

export function takeoverNote(t: Takeover): string {
  const parts: string[] = [];
  if (t.managers.length > 0) parts.push(`took over fields from ${t.managers.join(", ")}`);
  if (t.dropsLastApplied) parts.push(`dropped ${LAST_APPLIED_ANNOTATION}`);
  return parts.join("; ");
}

/**
 * `merged` as it will be once plumber owns what kubectl set: fields only the taken-over managers
 * held, which the manifest no longer sets and no other manager holds, are gone; so is the
 * last-applied annotation.
 */
export function afterTakeover(merged: KubeObject, live: KubeObject, t: Takeover, fieldManager: string, fresh: KubeObject): KubeObject {
  let theirs: FieldsV1 = {};
  for (const mgr of t.managers) theirs = mergeFields(theirs, managerFields(live, mgr, "Update") ?? {});
  let keep: FieldsV1 = managerFields(merged, fieldManager, "Apply") ?? {};
  const entries = (Array.isArray(merged.metadata.managedFields) ? merged.metadata.managedFields : []) as { manager?: string; operation?: string }[];
  for (const e of entries) {
    if (!e.manager || e.manager === fieldManager || t.managers.includes(e.manager)) continue;
    keep = mergeFields(keep, managerFields(merged, e.manager, e.operation === "Apply" ? "Apply" : "Update") ?? {});
  }
  const gone = fieldsMissingFrom(theirs, keep);
  const out = restoreFields(removeFields(merged, gone), fresh, gone) as KubeObject;
  if (out.metadata?.annotations) {
    delete out.metadata.annotations[LAST_APPLIED_ANNOTATION];
    if (Object.keys(out.metadata.annotations).length === 0) delete out.metadata.annotations;
  }
  return out;
}
