import type { KubeObject } from "../types.js";

/** Labels that say an object is plumber's, and whose. Prune only ever touches objects carrying both. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "plumber";
export const OWNER_LABEL = "plumber.dev/app";

export function withMarks(obj: KubeObject, owner: string): KubeObject {
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      labels: { ...(obj.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: owner },
    },
  };
}

export function carriesMarks(obj: { metadata?: { labels?: Record<string, string> } }, owner: string): boolean {
  const l = obj.metadata?.labels ?? {};
  return l[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && l[OWNER_LABEL] === owner;
}

export function ownerSelector(owner: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${OWNER_LABEL}=${owner}`;
}
