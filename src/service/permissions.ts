// A 403 from the apiserver names the verb and resource, not what to do: this says which RBAC
// manifest to extend. Used by readiness (/readyz) and by the ReconcileFailed Event.
import { KubeApiError } from "../kube/client.js";

/** The error's message, with what to do about it when it is a 403. */
export function permissionHint(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const forbidden = (e instanceof KubeApiError && e.status === 403) || /\bforbidden\b/i.test(msg);
  if (!forbidden) return msg;
  return `${msg} — plumber's ServiceAccount lacks this permission: grant it (manifests/20-rbac.yaml for plumber's own namespace, manifests/30-deploy-rbac.yaml for what it deploys)`;
}
