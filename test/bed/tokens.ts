// Test support: people as Kubernetes knows them. A ServiceAccount per person, RBAC on the real
// apiserver (enforced there), and a bearer token from the TokenRequest API: what a dashboard user
// pastes, checked by plumber with TokenReview and SubjectAccessReview, never by a list of its own.
import type { KubeClient } from "../../src/kube/client.js";
import { controlObjectName } from "../../src/state/control.js";

export interface Person {
  /** system:serviceaccount:<namespace>:<name>, as TokenReview and history name them. */
  username: string;
  token: string;
}

async function create(admin: KubeClient, path: string, body: Record<string, unknown>): Promise<void> {
  await admin.request({ method: "POST", path, body: JSON.stringify(body) });
}

/** A ServiceAccount in `namespace` and a one-hour token for it. */
export async function serviceAccount(admin: KubeClient, namespace: string, name: string): Promise<Person> {
  await create(admin, `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } });
  const tr = await admin.request<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } }),
  });
  return { username: `system:serviceaccount:${namespace}:${name}`, token: tr.body.status.token };
}

/** A Role in `namespace` with `rules`, bound to the ServiceAccount `sa` (of `saNamespace`). */
export async function grant(
  admin: KubeClient,
  namespace: string,
  role: string,
  rules: Array<Record<string, unknown>>,
  sa: { namespace: string; name: string },
): Promise<void> {
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}`;
  await create(admin, `${rbac}/roles`, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: role }, rules });
  await create(admin, `${rbac}/rolebindings`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: role },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role },
    subjects: [{ kind: "ServiceAccount", name: sa.name, namespace: sa.namespace }],
  });
}

export interface People {
  /** May act on the apps: the approver's Role of README "Keep people's write access … narrow". */
  approver: Person;
  /** Authenticated and may read the state namespace, but not act. */
  viewer: Person;
}

/**
 * Two people in `namespace`: an approver of `apps` (get/list configmaps in the state namespace,
 * get/patch/update on exactly their control records) and a viewer (get/list only).
 */
export async function approverAndViewer(admin: KubeClient, namespace: string, stateNamespace: string, apps: string[]): Promise<People> {
  const approver = await serviceAccount(admin, namespace, "approver");
  const viewer = await serviceAccount(admin, namespace, "viewer");
  const read = { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] };
  await grant(admin, stateNamespace, "dashboard-approver", [read, { apiGroups: [""], resources: ["configmaps"], resourceNames: apps.map(controlObjectName), verbs: ["get", "patch", "update"] }], {
    namespace,
    name: "approver",
  });
  await grant(admin, stateNamespace, "dashboard-viewer", [read], { namespace, name: "viewer" });
  return { approver, viewer };
}
