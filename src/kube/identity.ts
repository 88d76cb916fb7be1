import type { KubeClient } from "./client.js";

/** The cluster's identity: the uid of its kube-system namespace, which no two clusters share. */
export async function kubeSystemUID(client: KubeClient): Promise<string> {
  const ns = await client.getOptional<{ metadata?: { uid?: string } }>("/api/v1/namespaces/kube-system");
  const uid = ns?.metadata?.uid;
  if (!uid) throw new Error(`${client.server.origin} has no kube-system namespace to identify it by`);
  return uid;
}

export class WrongClusterError extends Error {
  constructor(cluster: string, server: string, expected: string, found: string) {
    super(`wrong cluster: "${cluster}" must have kube-system uid ${expected}, but ${server} has ${found}; refusing to read or write`);
    this.name = "WrongClusterError";
  }
}

/** Refuses to go on unless the cluster is the one the config names. */
export async function verifyIdentity(client: KubeClient, cluster: string, expectedUID: string): Promise<void> {
  const found = await kubeSystemUID(client);
  if (found !== expectedUID) throw new WrongClusterError(cluster, client.server.origin, expectedUID, found);
}
