// healthOf: is a live object ready? Generic rules first (deletion, observed generation, the
// kstatus Stalled/Reconciling conditions), then the rule of its kind (src/health/rules.ts), then
// a generic Ready condition; an object with none of these (ConfigMap, Secret, RBAC, Tekton Task,
// ...) is Current at once.

import type { KubeObject } from "../types.js";
import { conditionsOf, current, failed, inProgress, intField, ruleFor, type Health } from "./rules.js";

export type { Health } from "./rules.js";

export function healthOf(obj: KubeObject): Health {
  const meta = (obj.metadata ?? {}) as Record<string, unknown>;
  if (meta.deletionTimestamp) return inProgress("Terminating", "the object is being deleted");

  const observed = intField(obj, ["status", "observedGeneration"], -1);
  const generation = intField(obj, ["metadata", "generation"], -1);
  if (observed >= 0 && generation >= 0 && observed < generation) {
    return inProgress("ObservedGenerationMismatch", `the controller has not observed generation ${generation} yet (observed ${observed})`);
  }

  const conds = conditionsOf(obj);
  const stalled = conds.find((c) => c.type === "Stalled" && c.status === "True");
  if (stalled) return failed(stalled.reason ?? "Stalled", stalled.message ?? "the object is stalled");
  const reconciling = conds.find((c) => c.type === "Reconciling" && c.status === "True");
  if (reconciling) return inProgress(reconciling.reason ?? "Reconciling", reconciling.message ?? "the object is being reconciled");

  const rule = typeof obj.apiVersion === "string" && typeof obj.kind === "string" ? ruleFor(obj.apiVersion, obj.kind) : undefined;
  const byKind = rule?.(obj);
  if (byKind) return byKind;

  const ready = conds.find((c) => c.type === "Ready");
  if (ready?.status === "True") return current("Ready", ready.message ?? "the object is ready");
  if (ready) return inProgress(ready.reason ?? "NotReady", ready.message ?? `Ready is ${ready.status}`);
  return current("Current", "nothing to wait for");
}
