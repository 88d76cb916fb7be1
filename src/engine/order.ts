// Apply ordering as sort keys, after the gitops-engine pkg/sync model: every object gets a
// key [stage, kind rank, kind, group, namespace, name] and objects are applied in key order
// and pruned in the exact reverse.
//
// Stage 0 holds cluster definitions (CustomResourceDefinitions and Namespaces); they are
// applied, and waited on, before anything of stage 1 (everything else), so custom resources
// and namespaced objects find their type and namespace in place.

export type Stage = 0 | 1;

/** Identity of an object as far as ordering is concerned. `group` is "" for the core group. */
export interface OrderId {
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

export type SortKey = [stage: number, rank: number, kind: string, group: string, namespace: string, name: string];

const CORE = [""];
const APPS = ["apps", "extensions"];
const RBAC = ["rbac.authorization.k8s.io"];

/**
 * Helm/Flux install order of built-in kinds, each with the API groups it is recognised in.
 * A kind of the same name in another group (e.g. Knative's `serving.knative.dev` Service)
 * is a custom kind.
 */
export const KIND_ORDER: ReadonlyArray<readonly [kind: string, groups: readonly string[]]> = [
  ["Namespace", CORE],
  ["NetworkPolicy", ["networking.k8s.io", "extensions"]],
  ["ResourceQuota", CORE],
  ["LimitRange", CORE],
  ["PodDisruptionBudget", ["policy"]],
  ["ServiceAccount", CORE],
  ["Secret", CORE],
  ["SecretList", CORE],
  ["ConfigMap", CORE],
  ["StorageClass", ["storage.k8s.io"]],
  ["PersistentVolume", CORE],
  ["PersistentVolumeClaim", CORE],
  ["CustomResourceDefinition", ["apiextensions.k8s.io"]],
  ["ClusterRole", RBAC],
  ["ClusterRoleList", RBAC],
  ["ClusterRoleBinding", RBAC],
  ["ClusterRoleBindingList", RBAC],
  ["Role", RBAC],
  ["RoleList", RBAC],
  ["RoleBinding", RBAC],
  ["RoleBindingList", RBAC],
  ["Service", CORE],
  ["DaemonSet", APPS],
  ["Pod", CORE],
  ["ReplicationController", CORE],
  ["ReplicaSet", APPS],
  ["Deployment", APPS],
  ["HorizontalPodAutoscaler", ["autoscaling"]],
  ["StatefulSet", ["apps"]],
  ["Job", ["batch"]],
  ["CronJob", ["batch"]],
  ["IngressClass", ["networking.k8s.io"]],
  ["Ingress", ["networking.k8s.io", "extensions"]],
  ["APIService", ["apiregistration.k8s.io"]],
];

/** Admission kinds, applied last so a webhook cannot block the rest of the sync. */
export const WEBHOOK_ORDER: ReadonlyArray<readonly [kind: string, groups: readonly string[]]> = [
  ["MutatingWebhookConfiguration", ["admissionregistration.k8s.io"]],
  ["ValidatingWebhookConfiguration", ["admissionregistration.k8s.io"]],
  ["ValidatingAdmissionPolicy", ["admissionregistration.k8s.io"]],
  ["ValidatingAdmissionPolicyBinding", ["admissionregistration.k8s.io"]],
];

/** Rank given to every kind not in KIND_ORDER or WEBHOOK_ORDER (custom resources). */
export const UNKNOWN_KIND_RANK = KIND_ORDER.length;

const RANKS: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  KIND_ORDER.forEach(([kind, groups], i) => {
    for (const g of groups) m.set(`${g}/${kind}`, i);
  });
  WEBHOOK_ORDER.forEach(([kind, groups], i) => {
    for (const g of groups) m.set(`${g}/${kind}`, UNKNOWN_KIND_RANK + 1 + i);
  });
  return m;
})();

/** Rank of a kind in apply order; custom kinds share UNKNOWN_KIND_RANK, webhooks rank after them. */
export function kindRank(group: string, kind: string): number {
  return RANKS.get(`${group}/${kind}`) ?? UNKNOWN_KIND_RANK;
}

export function stageOf(group: string, kind: string): Stage {
  if (group === "apiextensions.k8s.io" && kind === "CustomResourceDefinition") return 0;
  if (group === "" && kind === "Namespace") return 0;
  return 1;
}

export function sortKey(o: OrderId): SortKey {
  return [stageOf(o.group, o.kind), kindRank(o.group, o.kind), o.kind, o.group, o.namespace, o.name];
}

function cmpStr(a: string, b: string): number {
  // Code-unit order, not locale order: the same everywhere.
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKeys(a: SortKey, b: SortKey): number {
  return (
    a[0] - b[0] ||
    a[1] - b[1] ||
    cmpStr(a[2], b[2]) ||
    cmpStr(a[3], b[3]) ||
    cmpStr(a[4], b[4]) ||
    cmpStr(a[5], b[5])
  );
}

/** A new array of `items` in apply order. Stable: items with equal identity keep their input order. */
export function applyOrder<T>(items: readonly T[], idOf: (t: T) => OrderId): T[] {
  const keyed = items.map((item, index) => ({ item, index, key: sortKey(idOf(item)) }));
  keyed.sort((a, b) => compareKeys(a.key, b.key) || a.index - b.index);
  return keyed.map((k) => k.item);
}

/** A new array of `items` in prune order: the exact reverse of applyOrder. */
export function pruneOrder<T>(items: readonly T[], idOf: (t: T) => OrderId): T[] {
  return applyOrder(items, idOf).reverse();
}

