// The JSON Schema of the config file (config/plumber.schema.json, JSON Schema 2020-12) and its
// compiled ajv validator. The schema is the single source of truth for the shape, the defaults
// and the documentation of each field; plumber's own annotation keywords are:
//   x-plumber-stage: "beta" | "alpha"      the field is gated by featureGates.apiFields (see gates.ts)
//   x-plumber-errors: { <keyword>: msg }   a friendlier message for a failing keyword of this schema
//   x-plumber-min-duration / x-plumber-max-duration: "<duration>"  bounds of a duration string

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

/** A (sub)schema of config/plumber.schema.json, as far as plumber reads it. */
export interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode | boolean;
  allOf?: SchemaNode[];
  $defs?: Record<string, SchemaNode>;
  "x-plumber-stage"?: "beta" | "alpha";
  "x-plumber-errors"?: Record<string, string>;
  "x-plumber-min-duration"?: string;
  "x-plumber-max-duration"?: string;
  [keyword: string]: unknown;
}

export type PathSegment = string | number;

/** Where the schema lives: <package root>/config/plumber.schema.json, from src/config or dist/src/config. */
const SCHEMA_CANDIDATES = [
  new URL("../../config/plumber.schema.json", import.meta.url),
  new URL("../../../config/plumber.schema.json", import.meta.url),
];

let schemaCache: SchemaNode | undefined;
let validatorCache: ValidateFunction | undefined;

/** The parsed config/plumber.schema.json (read once). */
export function configSchema(): SchemaNode {
  if (schemaCache) return schemaCache;
  const tried: string[] = [];
  for (const url of SCHEMA_CANDIDATES) {
    let text: string;
    try {
      text = readFileSync(url, "utf8");
    } catch {
      tried.push(fileURLToPath(url));
      continue;
    }
    schemaCache = JSON.parse(text) as SchemaNode;
    return schemaCache;
  }
  throw new Error(`plumber config schema not found (looked at ${tried.join(", ")})`);
}

/** The compiled validator: allErrors, useDefaults (the schema's defaults are filled in), verbose. */
export function configValidator(): ValidateFunction {
  if (validatorCache) return validatorCache;
  const ajv = new Ajv2020({
    allErrors: true,
    useDefaults: true,
    verbose: true, // errors carry parentSchema, for x-plumber-errors and "did you mean"
    strict: true,
    strictTypes: false, // "$ref" + "maxLength" without a local "type" is intended
    strictRequired: false, // "not": {"anyOf": [{"required": [...]}]} names properties defined one level up
  });
  ajv.addKeyword({
    keyword: "x-plumber-stage",
    schemaType: "string",
    metaSchema: { enum: ["beta", "alpha"] },
  });
  ajv.addKeyword({
    keyword: "x-plumber-errors",
    schemaType: "object",
    metaSchema: { type: "object", additionalProperties: { type: "string" } },
  });
  for (const keyword of ["x-plumber-min-duration", "x-plumber-max-duration"]) {
    ajv.addKeyword({ keyword, schemaType: "string" });
  }
  validatorCache = ajv.compile(configSchema());
  return validatorCache;
}

/** Follows a local "#/..." $ref of the config schema. */
export function resolveRef(root: SchemaNode, ref: string): SchemaNode {
  if (!ref.startsWith("#/")) throw new Error(`unsupported $ref ${ref}`);
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined;
  }
  if (node === null || typeof node !== "object") throw new Error(`dangling $ref ${ref}`);
  return node as SchemaNode;
}

/** The schema node itself, then what its $ref and allOf bring in (depth first, annotations included). */
export function effectiveSchemas(root: SchemaNode, node: SchemaNode): SchemaNode[] {
  const out: SchemaNode[] = [];
  const add = (n: SchemaNode, depth: number): void => {
    if (depth > 32 || out.includes(n)) return;
    out.push(n);
    if (typeof n.$ref === "string") add(resolveRef(root, n.$ref), depth + 1);
    for (const sub of n.allOf ?? []) add(sub, depth + 1);
  };
  add(node, 0);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Walks `data` alongside `root`: calls `visit` for every value that the schema describes through
 * "properties" and "items" (following $ref and allOf), with all schema nodes that apply to it.
 * Keys the schema does not know are skipped (the validator reports them).
 */
export function walkSchema(
  root: SchemaNode,
  data: unknown,
  visit: (schemas: SchemaNode[], value: unknown, path: PathSegment[]) => void,
): void {
  const walk = (nodes: SchemaNode[], value: unknown, path: PathSegment[]): void => {
    const schemas: SchemaNode[] = [];
    for (const n of nodes) for (const s of effectiveSchemas(root, n)) if (!schemas.includes(s)) schemas.push(s);
    if (path.length > 0) visit(schemas, value, path);
    if (isPlainObject(value)) {
      for (const key of Object.keys(value)) {
        const subs = schemas.flatMap((s) => (s.properties && Object.hasOwn(s.properties, key) ? [s.properties[key]!] : []));
        if (subs.length > 0) walk(subs, value[key], [...path, key]);
      }
    }
    if (Array.isArray(value)) {
      const items = schemas.flatMap((s) => (s.items && typeof s.items === "object" ? [s.items] : []));
      if (items.length > 0) value.forEach((item, i) => walk(items, item, [...path, i]));
    }
  };
  walk([root], data, []);
}
