// Object identity: the key under which manifests, inventory entries and live objects are the same cluster object.

export interface ObjectId {
  /** API group; "" for the core group (apiVersion "v1"). */
  group: string;
  version: string;
  kind: string;
  /** "" for cluster-scoped objects, or when the scope is not known yet. */
  namespace: string;
  name: string;
}

/** An ObjectId without the version: what idKey encodes and parseIdKey returns. */
export type ObjectKey = Omit<ObjectId, "version">;

/**
 * "group/Kind/namespace/name" (core group and cluster scope are empty segments, e.g.
 * "/ConfigMap/default/cfg", "rbac.authorization.k8s.io/ClusterRole//view"). The version is left
 * out on purpose: moving a manifest from apps/v1beta1 to apps/v1 is the same object. Accepts a
 * full ObjectId (the version is ignored).
 */
export function idKey(id: ObjectKey & { version?: string }): string {
  return `${id.group}/${id.kind}/${id.namespace}/${id.name}`;
}

/** Inverse of idKey. Throws on a string that is not four "/"-separated segments with kind and name. */
export function parseIdKey(key: string): ObjectKey {
  const parts = key.split("/");
  if (parts.length !== 4 || !parts[1] || !parts[3]) {
    throw new Error(`invalid object key ${JSON.stringify(key)}: expected group/Kind/namespace/name`);
  }
  const [group, kind, namespace, name] = parts as [string, string, string, string];
  return { group, kind, namespace, name };
}

/** For messages: "apps/Deployment default/web", "ConfigMap default/cfg", "Namespace team-a". */
export function describeId(id: ObjectKey): string {
  const gk = id.group ? `${id.group}/${id.kind}` : id.kind;
  return id.namespace ? `${gk} ${id.namespace}/${id.name}` : `${gk} ${id.name}`;
}
