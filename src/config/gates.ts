// Feature gates for config fields, after Tekton's enable-api-fields: a field whose schema carries
// "x-plumber-stage": "beta" or "alpha" may only be used when featureGates.apiFields is at that
// stage or above (stable < beta < alpha). Fields without the annotation are stable.

import type { ApiFieldsGate } from "./types.js";
import { walkSchema, type PathSegment, type SchemaNode } from "./schema.js";

export type { ApiFieldsGate };

/** The gate values in order: each allows the fields of its own stage and of the stages before it. */
export const API_FIELDS_GATES: readonly ApiFieldsGate[] = ["stable", "beta", "alpha"];

export function isApiFieldsGate(v: unknown): v is ApiFieldsGate {
  return typeof v === "string" && (API_FIELDS_GATES as readonly string[]).includes(v);
}

/** Whether a field at `stage` may be used under `gate`. */
export function stageAllowed(stage: ApiFieldsGate, gate: ApiFieldsGate): boolean {
  return API_FIELDS_GATES.indexOf(stage) <= API_FIELDS_GATES.indexOf(gate);
}

/** The stage of a field from the schema nodes that apply to it (the highest one wins). */
export function fieldStage(schemas: SchemaNode[]): ApiFieldsGate {
  let stage: ApiFieldsGate = "stable";
  for (const s of schemas) {
    const v = s["x-plumber-stage"];
    if (isApiFieldsGate(v) && !stageAllowed(v, stage)) stage = v;
  }
  return stage;
}

export interface GatedField {
  /** Path of the field in the config data, e.g. ["apps", 0, "applyConcurrency"]. */
  path: PathSegment[];
  stage: ApiFieldsGate;
  /** e.g. "field is alpha; set featureGates.apiFields: alpha to use it" */
  message: string;
}

export function gateMessage(stage: ApiFieldsGate): string {
  return `field is ${stage}; set featureGates.apiFields: ${stage} to use it`;
}

/**
 * The fields present in `data` (as written, before defaults are filled in) whose stage is above
 * `gate`. A field inside a refused field is not listed again.
 */
export function findGatedFields(schema: SchemaNode, data: unknown, gate: ApiFieldsGate): GatedField[] {
  const out: GatedField[] = [];
  walkSchema(schema, data, (schemas, _value, path) => {
    const stage = fieldStage(schemas);
    if (stageAllowed(stage, gate)) return;
    if (out.some((f) => f.path.length < path.length && f.path.every((seg, i) => seg === path[i]))) return;
    out.push({ path, stage, message: gateMessage(stage) });
  });
  return out;
}
