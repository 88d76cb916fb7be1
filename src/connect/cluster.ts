// A connection to one target cluster, shared by every app deployed to it and every release that
// runs in it: the API client, discovery, plumber's stores in the state namespace, the
// wrong-cluster guard, the installation's hash key and the apps' ownership claims.
import type { ClusterConfig } from "../config/types.js";
import { KubeClient, loadKubeConfig } from "../kube/client.js";
import { Discovery } from "../kube/discovery.js";
import { ClaimTable } from "../engine/claims.js";
import { verifyIdentity } from "../kube/identity.js";
import { ControlStore } from "../state/control.js";
import { HashKeyStore } from "../state/hashkey.js";
import { StateStore } from "../state/store.js";

export interface ClusterConnection {
  config: ClusterConfig;
  client: KubeClient;
  discovery: Discovery;
  store: StateStore;
  control: ControlStore;
  /** Which app is checking and writing which object right now: one table for every app on this cluster. */
  claims: ClaimTable;
  /** The wrong-cluster guard: resolves once the cluster proved its identity (cached), else throws. */
  verify: () => Promise<void>;
  /**
   * The installation's hash key in this cluster (after verify). `create`: make it when missing
   * (a writer); otherwise undefined until one exists (plan, status write nothing).
   */
  hashKey: (create: boolean) => Promise<Uint8Array | undefined>;
}

export async function connectCluster(config: ClusterConfig, stateNamespace: string): Promise<ClusterConnection> {
  let client: KubeClient;
  try {
    client = await KubeClient.create(loadKubeConfig(config));
  } catch (e) {
    throw new Error(`cluster ${config.name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  let verified: Promise<void> | undefined;
  const verify = (): Promise<void> => {
    const expected = config.expect?.kubeSystemUID;
    if (!expected) return Promise.resolve();
    // A failed look (network) is retried next time; a mismatch keeps failing on its own.
    verified ??= verifyIdentity(client, config.name, expected).catch((e: unknown) => {
      verified = undefined;
      throw e;
    });
    return verified;
  };
  const keys = new HashKeyStore(client, stateNamespace);
  let key: Promise<Uint8Array | undefined> | undefined;
  const hashKey = async (create: boolean): Promise<Uint8Array | undefined> => {
    // Never read or create plumber's key in a cluster that is not the one the config names.
    await verify();
    const found = await (key ??= keys.load(create).catch((e: unknown) => {
      key = undefined;
      throw e;
    }));
    // Not there yet and not ours to create: ask again next time.
    if (!found) key = undefined;
    if (!found && create) return hashKey(true);
    return found;
  };
  return {
    config,
    client,
    discovery: new Discovery(client),
    store: new StateStore(client, stateNamespace),
    control: new ControlStore(client, stateNamespace),
    claims: new ClaimTable(),
    verify,
    hashKey,
  };
}
