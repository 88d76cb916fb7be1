// Who the cluster says the caller is: a SelfSubjectReview (authentication.k8s.io/v1, GA since
// Kubernetes 1.28, allowed to every authenticated user by system:basic-user). The CLI records
// this name beside an approval or a pin, so `plumber history` names who acted from a terminal as
// it does for the dashboard: the cluster's word, not $USER or the kubeconfig's user entry.
import type { KubeClient } from "./client.js";

interface SelfSubjectReview {
  status?: { userInfo?: { username?: string } };
}

/** The caller's username, or undefined where the cluster cannot say (older than 1.28, or refused). */
export async function whoAmI(client: KubeClient): Promise<string | undefined> {
  try {
    const res = await client.request<SelfSubjectReview>({
      method: "POST",
      path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      contentType: "application/json",
      body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
    });
    return res.body.status?.userInfo?.username || undefined;
  } catch {
    // Who acted is a note in the record, not a condition of acting: the request still goes in.
    return undefined;
  }
}
