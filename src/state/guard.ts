// What no app may deploy, whatever its namespace policy: plumber's own state. A manifest that
// wrote the control ConfigMap could approve its own revision; one that wrote the state ConfigMap
// could make plumber record a revision as deployed that never was; one that wrote the Lease could
// stop leader election; one that wrote the hash key could make stored hashes guessable again.
// So every object of every app is checked against this before any write (SyncRequest.guard).
import { controlObjectName } from "./control.js";
import { HASH_KEY_SECRET } from "./hashkey.js";
import { stateObjectName } from "./store.js";
import { releaseStateName } from "./release.js";

export interface ReservedObjects {
  /** config state.namespace: every app's state, control record, release state and the hash key live here. */
  stateNamespace: string;
  /** The leader-election Lease (--lease-name, --lease-namespace); namespace unknown: refused in any namespace. */
  lease?: { name: string; namespace?: string };
}

export type ObjectIdentity = { group: string; kind: string; namespace: string; name: string };

/** The default --lease-name (src/cli/main.ts). */
export const DEFAULT_LEASE_NAME = "plumber";

// The name prefixes of plumber's ConfigMaps, taken from the functions that name them so a rename
// cannot leave a hole. Refused in every namespace: a second installation on the same cluster
// keeps its state under another state.namespace, and it must be as safe from this one's apps.
const CONFIGMAP_PREFIXES = [stateObjectName(""), controlObjectName(""), releaseStateName("")];

/** A SyncRequest.guard: why an object may not be deployed by any app, or undefined. */
export function reservedObjectGuard(r: ReservedObjects): (id: ObjectIdentity) => string | undefined {
  const lease = r.lease ?? { name: DEFAULT_LEASE_NAME };
  return (id) => {
    const what = `${id.kind} ${id.namespace ? `${id.namespace}/` : ""}${id.name}`;
    if (id.group === "" && id.kind === "Namespace" && id.name === r.stateNamespace) {
      return `${what} is plumber's state namespace (state.namespace); no app may deploy it`;
    }
    if (id.namespace === r.stateNamespace) {
      return `${what} is in plumber's state namespace "${r.stateNamespace}" (state.namespace), where no app may deploy anything`;
    }
    if (id.group === "" && id.kind === "ConfigMap" && CONFIGMAP_PREFIXES.some((p) => id.name.startsWith(p))) {
      return `${what} is named like one of plumber's own state or control records (${CONFIGMAP_PREFIXES.map((p) => `${p}*`).join(", ")}); no app may deploy it`;
    }
    if (id.group === "" && id.kind === "Secret" && id.name === HASH_KEY_SECRET) {
      return `${what} is named like plumber's hash key Secret; no app may deploy it`;
    }
    if (id.group === "coordination.k8s.io" && id.kind === "Lease" && id.name === lease.name && (lease.namespace === undefined || lease.namespace === id.namespace)) {
      return `${what} is plumber's leader-election Lease; no app may deploy it`;
    }
    return undefined;
  };
}
