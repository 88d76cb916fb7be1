// A 403 from the apiserver names the verb and resource, not what to do: this says which RBAC
// manifest to extend. Used by readiness (/readyz) and by the ReconcileFailed Event.
import { KubeApiError } from "../kube/client.js";

const HINT =
  "plumber's ServiceAccount lacks this permission: grant it (manifests/20-rbac.yaml for plumber's own namespace, manifests/30-deploy-rbac.yaml for what it deploys)";

/** Whether the error is the apiserver's 403, or was caused by one. */
export function isForbidden(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x !== undefined && x !== null && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    if (x instanceof KubeApiError && x.status === 403) return true;
  }
  return false;
}

/** A message about a 403, with what to do about it. */
export function withPermissionHint(message: string): string {
  return `${message} — ${HINT}`;
}

/** The error's message, with what to do about it when it is a 403. */
export function permissionHint(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return isForbidden(e) ? withPermissionHint(msg) : msg;
}
