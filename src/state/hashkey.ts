// The per-installation key of every hash plumber stores (inventory fp and dh, EngineDeps.hashKey).
// An unkeyed sha256 of a manifest lets anyone who can read the state ConfigMaps test guesses of
// a Secret's values offline (a 4-digit PIN falls in well under a second); keyed, the hashes say
// nothing without the key. It lives in a Secret beside the state, so state readers (ConfigMaps
// only) do not get it, and it is created on first use. The key is never logged.
import { createHmac, randomBytes } from "node:crypto";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import { ensureNamespace } from "../kube/namespace.js";

export const HASH_KEY_SECRET = "plumber-hash-key";
const DATA_KEY = "key";
const KEY_BYTES = 32;

interface SecretObject {
  data?: Record<string, string>;
}

export class HashKeyStore {
  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  private collection(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/secrets`;
  }

  /** The key, or undefined when there is none yet and `create` is false (plan, status: no writes). */
  async load(create: boolean): Promise<Uint8Array | undefined> {
    const existing = await this.read();
    if (existing || !create) return existing;
    await ensureNamespace(this.client, this.namespace);
    const body = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: HASH_KEY_SECRET,
        namespace: this.namespace,
        labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "hash-key" },
      },
      type: "Opaque",
      data: { [DATA_KEY]: randomBytes(KEY_BYTES).toString("base64") },
    };
    try {
      await this.client.request({ method: "POST", path: this.collection(), body: JSON.stringify(body) });
    } catch (e) {
      // Another replica (or a concurrent command) created it first: use theirs.
      if (!(e instanceof KubeApiError && e.conflict)) throw e;
    }
    const created = await this.read();
    if (!created) throw new Error(`Secret ${this.namespace}/${HASH_KEY_SECRET} vanished right after it was created`);
    return created;
  }

  private async read(): Promise<Uint8Array | undefined> {
    const s = await this.client.getOptional<SecretObject>(`${this.collection()}/${HASH_KEY_SECRET}`);
    if (!s) return undefined;
    const b64 = s.data?.[DATA_KEY];
    const key = b64 ? Buffer.from(b64, "base64") : Buffer.alloc(0);
    // A key someone truncated or emptied would make every hash weak: refuse rather than use it.
    if (key.length < 16) throw new Error(`Secret ${this.namespace}/${HASH_KEY_SECRET}: data.${DATA_KEY} must hold at least 16 bytes (delete the Secret to have plumber create a new key)`);
    return new Uint8Array(key);
  }
}

/**
 * Names a key without revealing it: stored with an app's state, so a cycle can tell that the
 * stored hashes were made with another key (or none: state from before keyed hashes) and must be
 * recomputed from dry-runs instead of compared.
 */
export function hashKeyId(key: Uint8Array | undefined): string {
  if (!key) return "";
  return createHmac("sha256", key).update("plumber.dev/hash-key-id").digest("hex").slice(0, 16);
}
