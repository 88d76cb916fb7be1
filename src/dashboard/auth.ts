// Who the caller is and what they may do, decided by the cluster itself: a TokenReview of their
// bearer token, then a SubjectAccessReview of the user it names. plumber keeps no user list.
import { KubeApiError, type KubeClient } from "../kube/client.js";

export interface Identity {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What an action needs: a verb on one object (e.g. update configmap plumber-control-APP in the state namespace). */
export interface AccessCheck {
  namespace: string;
  verb: string;
  group: string;
  resource: string;
  name: string;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

/** The token's user, or undefined when the cluster does not accept the token. */
export async function reviewToken(client: KubeClient, token: string): Promise<Identity | undefined> {
  const res = await client.request<{ status?: TokenReviewStatus }>({
    method: "POST",
    path: "/apis/authentication.k8s.io/v1/tokenreviews",
    contentType: "application/json",
    body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } }),
  });
  const s = res.body.status;
  if (!s?.authenticated || !s.user?.username) return undefined;
  return { username: s.user.username, ...(s.user.uid ? { uid: s.user.uid } : {}), groups: s.user.groups ?? [], ...(s.user.extra ? { extra: s.user.extra } : {}) };
}

export async function mayAccess(client: KubeClient, who: Identity, check: AccessCheck): Promise<boolean> {
  const res = await client.request<{ status?: { allowed?: boolean } }>({
    method: "POST",
    path: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    contentType: "application/json",
    body: JSON.stringify({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: { user: who.username, ...(who.uid ? { uid: who.uid } : {}), groups: who.groups, ...(who.extra ? { extra: who.extra } : {}), resourceAttributes: check },
    }),
  });
  return res.body.status?.allowed === true;
}

/** The token's user in this cluster; a refused review (plumber lacks the permission) says so rather than passing as "no". */
export async function identify(client: KubeClient, token: string): Promise<Identity | undefined> {
  try {
    return await reviewToken(client, token);
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403) throw new Error(`plumber may not create TokenReviews in this cluster (grant it system:auth-delegator): ${e.message}`, { cause: e });
    throw e;
  }
}
