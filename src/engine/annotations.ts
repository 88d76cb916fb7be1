// Per-object opt-ins and opt-outs, set as annotations on the manifest (or, for ignore and prune,
// on the live object, so a person can hold an object without a commit). Names follow Flux's
// kustomize.toolkit.fluxcd.io/* annotations; values are case-sensitive, as Flux's are.

import type { FileProblem, KubeObject, SourceRef } from "../types.js";

export const PRUNE_ANNOTATION = "plumber.dev/prune";
export const SSA_ANNOTATION = "plumber.dev/ssa";
export const FORCE_ANNOTATION = "plumber.dev/force";
export const ADOPT_ANNOTATION = "plumber.dev/adopt";

export type SsaPolicy = "Merge" | "IfNotPresent" | "Ignore";

export interface ObjectPolicy {
  /** false: never deleted by prune (plumber.dev/prune: disabled). */
  prune: boolean;
  /** Merge (default): apply; IfNotPresent: create when missing, never update; Ignore: leave alone. */
  ssa: SsaPolicy;
  /** Delete and recreate when an immutable field changes (plumber.dev/force: enabled). */
  force: boolean;
  /** May take an object another plumber app owns (plumber.dev/adopt: enabled). */
  adopt: boolean;
}

const ALLOWED: Record<string, readonly string[]> = {
  [PRUNE_ANNOTATION]: ["enabled", "disabled"],
  [SSA_ANNOTATION]: ["Merge", "IfNotPresent", "Ignore"],
  [FORCE_ANNOTATION]: ["enabled", "disabled"],
  [ADOPT_ANNOTATION]: ["enabled", "disabled"],
};

/** The policy a manifest asks for; a value plumber does not know is a problem naming file:line. */
export function manifestPolicy(obj: KubeObject, source: SourceRef, problems: FileProblem[]): ObjectPolicy {
  const ann = obj.metadata.annotations ?? {};
  for (const [key, values] of Object.entries(ALLOWED)) {
    const v = ann[key];
    if (v !== undefined && !values.includes(v)) {
      problems.push({ file: source.file, line: source.line, field: `metadata.annotations.${key}`, message: `"${v}" is not one of ${values.map((x) => `"${x}"`).join(", ")}` });
    }
  }
  return policyOf(ann);
}

/** The policy read leniently (a live object's annotations: unknown values mean the default). */
export function policyOf(ann: Record<string, string> | undefined): ObjectPolicy {
  const a = ann ?? {};
  const ssa = a[SSA_ANNOTATION];
  return {
    prune: a[PRUNE_ANNOTATION] !== "disabled",
    ssa: ssa === "IfNotPresent" || ssa === "Ignore" ? ssa : "Merge",
    force: a[FORCE_ANNOTATION] === "enabled",
    adopt: a[ADOPT_ANNOTATION] === "enabled",
  };
}

/** Whether a live object says to leave it alone or keep it from prune. */
export function liveIgnored(live: KubeObject | undefined): boolean {
  return live?.metadata.annotations?.[SSA_ANNOTATION] === "Ignore";
}

export function livePruneDisabled(live: KubeObject | undefined): boolean {
  return live?.metadata.annotations?.[PRUNE_ANNOTATION] === "disabled";
}
