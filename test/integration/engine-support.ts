// The engine as a library against the real apiserver: no git, no config, no reconciler.
import { Discovery } from "../../src/kube/discovery.js";
import { KubeClient, loadKubeConfig, type KubeRequest } from "../../src/kube/client.js";
import { Engine, type EngineDeps, type SyncRequest } from "../../src/engine/engine.js";
import type { InventoryEntry } from "../../src/engine/inventory.js";
import type { KubeObject, Manifest } from "../../src/types.js";
import { testEnv, uniqueName } from "../setup/env.js";

export interface Bed {
  client: KubeClient;
  discovery: Discovery;
  namespace: string;
  engine(deps?: Partial<EngineDeps>): Engine;
  /** Every request the client sent since the last call, in order. */
  sent(): KubeRequest[];
  req(manifests: Manifest[], previous?: InventoryEntry[], more?: Partial<SyncRequest>): SyncRequest;
  get<T = KubeObject>(path: string): Promise<T | undefined>;
  close(): Promise<void>;
}

/** A client, discovery and a fresh namespace; cluster-scoped objects a test makes are its to delete. */
export async function bed(owner = uniqueName("app")): Promise<Bed & { owner: string }> {
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: testEnv().kubeconfigPath }));
  const discovery = new Discovery(client);
  const namespace = uniqueName("eng");
  await client.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }) });
  let log: KubeRequest[] = [];
  const raw = client.raw.bind(client);
  client.raw = (r: KubeRequest) => {
    log.push(r);
    return raw(r);
  };
  return {
    owner,
    client,
    discovery,
    namespace,
    engine: (deps = {}) => new Engine({ client, discovery, ...deps }),
    sent: () => {
      const out = log;
      log = [];
      return out;
    },
    req: (manifests, previous = [], more = {}) => ({ owner, manifests, defaultNamespace: namespace, previous, prune: true, allowEmpty: false, ...more }),
    get: <T = KubeObject>(path: string) => client.getOptional<T>(path),
    close: async () => {
      await client.request({ method: "DELETE", path: `/api/v1/namespaces/${namespace}` }).catch(() => undefined);
      client.close();
    },
  };
}

let line = 0;
export function m(object: Record<string, unknown>, file = "test.yaml"): Manifest {
  return { object: object as unknown as KubeObject, source: { file, line: ++line } };
}

export function cm(name: string, data: Record<string, string>, extra: { namespace?: string; annotations?: Record<string, string> } = {}): Manifest {
  const metadata: Record<string, unknown> = { name };
  if (extra.namespace) metadata.namespace = extra.namespace;
  if (extra.annotations) metadata.annotations = extra.annotations;
  return m({ apiVersion: "v1", kind: "ConfigMap", metadata, data }, `${name}.yaml`);
}

export const cmPath = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/configmaps/${name}`;
