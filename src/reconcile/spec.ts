import type { AppConfig } from "../config/types.js";
import { canonicalJson, sha256Hex } from "../engine/hash.js";
import type { NamespacePolicy } from "../engine/resource.js";

/**
 * The app as the reconciler sees it, derived once from its config: the config itself, the
 * namespace policy every sync and plan of it carries, and the hash of what shapes a sync.
 */
export interface AppSpec {
  readonly config: AppConfig;
  /** A change to it lets a revision that failed for good be tried again (state.failedSpec). */
  readonly hash: string;
  readonly namespacePolicy: NamespacePolicy;
}

export function appSpec(a: AppConfig): AppSpec {
  return { config: a, hash: specHash(a), namespacePolicy: { targetNamespace: a.targetNamespace, allowedNamespaces: a.allowedNamespaces, allowClusterScoped: a.allowClusterScoped } };
}

/** Stored in state (failedSpec): the hashed fields and their form must stay as they are. */
export function specHash(a: AppConfig): string {
  // Fields added later appear only when set, so an unchanged config keeps its hash.
  const policy = { ...(a.targetNamespace ? { targetNamespace: a.targetNamespace } : {}), ...(a.allowedNamespaces ? { allowedNamespaces: a.allowedNamespaces } : {}), ...(a.allowClusterScoped ? {} : { allowClusterScoped: false }) };
  const spec = { ...policy, name: a.name, repo: a.repo, branch: a.branch, path: a.path, cluster: a.cluster, namespace: a.namespace, prune: a.prune, allowEmpty: a.allowEmpty, checks: a.checks, approval: a.approval };
  return sha256Hex(canonicalJson(spec)).slice(0, 16);
}
