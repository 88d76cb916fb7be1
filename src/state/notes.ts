// Status notes: a few keys of an app's state ConfigMap (plumber-app-<app>) that are written by a
// field manager of their own (server-side apply), not by the StateStore's full record. Each part
// (source health, contested fields) owns its keys: applying an empty set removes exactly those
// keys and leaves the app's record alone, and the record's own writes never drop them. Written
// only on transitions, so a steady state costs no write.
import { ensureNamespace } from "../kube/namespace.js";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import { stateObjectName } from "./store.js";

/** One field manager per part, so each part's keys come and go independently. */
export const NOTE_MANAGERS = { source: "plumber-source", contest: "plumber-contest" } as const;

export type NotePart = keyof typeof NOTE_MANAGERS;

function path(namespace: string, app: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${stateObjectName(app)}`;
}

/** Sets the keys of `part` to `data` (an empty object removes them). */
export async function writeNotes(client: KubeClient, namespace: string, app: string, part: NotePart, data: Record<string, string>): Promise<void> {
  const body = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: stateObjectName(app),
      namespace,
      labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "app" },
    },
    ...(Object.keys(data).length ? { data } : {}),
  };
  const send = () =>
    client.request({
      method: "PATCH",
      path: path(namespace, app),
      query: { fieldManager: NOTE_MANAGERS[part], force: "true" },
      contentType: "application/apply-patch+yaml",
      body: JSON.stringify(body),
    });
  try {
    await send();
  } catch (e) {
    // A source can fail before the app ever recorded anything: the state namespace may not exist yet.
    if (!(e instanceof KubeApiError && e.notFound)) throw e;
    await ensureNamespace(client, namespace);
    await send();
  }
}

/** The state ConfigMap's data (every part's keys and the record's), or undefined when there is none. */
export async function readStateData(client: KubeClient, namespace: string, app: string): Promise<Record<string, string> | undefined> {
  const cm = await client.getOptional<{ data?: Record<string, string> }>(path(namespace, app));
  return cm ? (cm.data ?? {}) : undefined;
}
