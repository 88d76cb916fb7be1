import { createTwoFilesPatch } from "diff";
import { stringify } from "yaml";
import type { KubeObject } from "../types.js";

/** Server bookkeeping that changes on every write and says nothing about intent. */
const NOISE = ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"] as const;
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * A kubectl-diff-like unified diff of one object: live (or nothing) against what the server
 * would store. Secret values never appear: they read *** and say only whether they change.
 */
export function diffObject(subject: string, live: KubeObject | undefined, merged: KubeObject | undefined): string {
  let [a, b] = [live ? clean(live) : undefined, merged ? clean(merged) : undefined];
  if (a && b) {
    // LIST items carry neither apiVersion nor kind: what one side lacks is not a change.
    for (const k of ["apiVersion", "kind"] as const) {
      if (a[k] === undefined && b[k] !== undefined) a[k] = b[k];
      if (b[k] === undefined && a[k] !== undefined) b[k] = a[k];
    }
  }
  if ((a?.kind ?? b?.kind) === "Secret") [a, b] = maskSecrets(a, b);
  const left = a ? stringify(a, { sortMapEntries: true }) : "";
  const right = b ? stringify(b, { sortMapEntries: true }) : "";
  if (left === right) return "";
  return createTwoFilesPatch(a ? `live/${subject}` : "/dev/null", b ? `merged/${subject}` : "/dev/null", left, right, "", "", { context: 3 });
}

function clean(obj: KubeObject): KubeObject {
  const copy = structuredClone(obj);
  for (const k of NOISE) delete copy.metadata[k];
  return copy;
}

type Obj = KubeObject | undefined;

function maskSecrets(a: Obj, b: Obj): [Obj, Obj] {
  for (const o of [a, b]) {
    const ann = o?.metadata.annotations;
    if (ann && LAST_APPLIED in ann) ann[LAST_APPLIED] = "***";
  }
  for (const field of ["data", "stringData"] as const) {
    const before = (a?.[field] ?? {}) as Record<string, unknown>;
    const after = (b?.[field] ?? {}) as Record<string, unknown>;
    const maskedA: Record<string, string> = {};
    const maskedB: Record<string, string> = {};
    for (const k of Object.keys(before)) maskedA[k] = k in after && after[k] !== before[k] ? "*** (before)" : "***";
    for (const k of Object.keys(after)) maskedB[k] = k in before && after[k] !== before[k] ? "*** (after)" : "***";
    if (a && a[field] !== undefined) a[field] = maskedA;
    if (b && b[field] !== undefined) b[field] = maskedB;
  }
  return [a, b];
}
