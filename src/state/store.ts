import { gunzipSync, gzipSync } from "node:zlib";
import { ensureNamespace } from "../kube/namespace.js";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import type { InventoryEntry } from "../engine/inventory.js";
import { MAX_CHUNKS, chunkObjectName, chunkPrefix, joinChunks, layoutOf, type Layout } from "./chunks.js";

/**
 * Per-app state kept in the target cluster itself (a ConfigMap per app in the state namespace),
 * so a restarted plumber — or another replica — neither re-applies unchanged objects nor forgets
 * what it must prune. Status fields stay readable with kubectl; the inventory is gzipped JSON, in
 * the record itself or, past what one object holds, in chunk objects of one generation
 * (src/state/chunks.ts) that the record names.
 */

export type LastResult = "Applied" | "DriftRepaired" | "Failed" | "RolledBack";

/** One deploy attempt of a revision, newest first in AppState.history. */
export interface DeployRecord {
  revision: string;
  startedAt: string;
  finishedAt: string;
  result: "Applied" | "Failed" | "RolledBack";
  /** Change-set counts, e.g. {created: 2, configured: 1}. */
  changes?: Record<string, number>;
  message?: string;
  /** For a rollback: the revision that failed and why. */
  cause?: string;
  checks?: { name: string; phase: string; passed: boolean; object: string; reason: string; message: string }[];
  /** Who asked for this deploy (approved, pinned or retried it from the dashboard): the TokenReview username. */
  by?: string;
}

export const HISTORY_LIMIT = 20;

/** Fields every phase has; which are set depends on the history of the app. */
interface StateFields {
  app: string;
  /** The branch the applied revision came from (for an app with a branchPattern, the one it picked). */
  branch?: string;
  /** The revision last applied successfully: what the cluster follows. */
  revision?: string;
  /** The last revision that passed health and post-checks: where a rollback goes. */
  goodRevision?: string;
  /** A revision planned and waiting (for approval, a sync window, a dependency). */
  pendingRevision?: string;
  /** The last `plumber retry` request acted on. */
  retryConsumed?: string;
  verifyStartedAt?: string;
  /** A verify that waits across cycles: when health passed (post-checks under way since). */
  healthyAt?: string;
  /** A verify that waits across cycles: the post-checks' progress (JSON, src/reconcile/verify-progress.ts). */
  verifyChecks?: string;
  /**
   * A pendingRevision whose pre-checks wait across cycles: their progress (JSON: the revision, the
   * checks done, the one running since when; src/reconcile/verify-progress.ts). Nothing is applied yet.
   */
  preChecks?: string;
  /** A Verifying rollback: the revision that failed, rolled back from; `revision` (the good one) waits for health. */
  rollbackFrom?: string;
  /** A Verifying rollback: why rollbackFrom failed (for the record written when the rollback is healthy). */
  rollbackCause?: string;
  /** Who asked for the applied revision (AppControl's approvedBy, pinnedBy, retryBy), for the history record written after verify. */
  actedBy?: string;
  /** Change-set counts of the last apply (JSON), for the history record written after verify. */
  lastChanges?: string;
  /** The revision of the last attempt, good or bad. */
  attemptedRevision?: string;
  lastResult?: LastResult;
  /** The failure of the last attempt; empty after success. */
  message?: string;
  /** A revision that failed in a way retrying cannot fix (bad YAML, rejected by the server). */
  failedRevision?: string;
  /** Hash of the app config under which failedRevision failed. */
  failedSpec?: string;
  appliedAt?: string;
  updatedAt?: string;
  /** Server warnings (deprecated API versions, policy warnings) of the last apply, one per line: "Kind/ns/name: text". */
  warnings?: string;
  /** hashKeyId() of the key the inventory's hashes were made with; "" or absent: unkeyed (older plumber). */
  hashKeyId?: string;
  inventory: InventoryEntry[];
  /** The last HISTORY_LIMIT deploy attempts, newest first. */
  history: DeployRecord[];
}

/** No phase: nothing applied yet, or a halt that `plumber retry` cleared (the next apply sets one). */
export interface UnphasedState extends StateFields {
  phase?: undefined;
}
/**
 * Applied; health gating and post-checks under way since verifyStartedAt (a restart resumes them).
 * With rollbackFrom: a rollback re-applied the good revision (`revision`) and waits for its health.
 */
export interface VerifyingState extends StateFields {
  phase: "Verifying";
  revision: string;
  verifyStartedAt: string;
}
/** A rollback's health wait: the good revision (`revision`) re-applied after rollbackFrom failed. */
export type RollingBackState = VerifyingState & { rollbackFrom: string };
/** Healthy at revision, which is also the good revision (after a deploy or a rollback). */
export interface ReadyState extends StateFields {
  phase: "Ready";
  revision: string;
  goodRevision: string;
}
/** pendingRevision is planned and waits for `plumber approve`. */
export interface WaitingApprovalState extends StateFields {
  phase: "WaitingApproval";
  pendingRevision: string;
}
/** failedRevision failed in a way that needs a person (the rollback failed too, or rollback is off). */
export interface HaltedState extends StateFields {
  phase: "Halted";
  failedRevision: string;
  message: string;
}

/** One app's state, typed by phase: what a phase needs is there, without `?? ""`. */
export type AppState = UnphasedState | VerifyingState | ReadyState | WaitingApprovalState | HaltedState;

export function emptyState(app: string): UnphasedState {
  return { app, inventory: [], history: [] };
}

/**
 * The state of the stored status fields, checked against its phase. A phase whose fields are
 * missing (hand-edited, or written by something else) is dropped rather than trusted, so the next
 * cycle starts from what is certain; a Verifying state keeps its phase so the wait resumes.
 */
export function stateFromFields(app: string, data: Record<string, string | undefined>, inventory: InventoryEntry[], history: DeployRecord[]): AppState {
  const f: StateFields & { phase?: string } = { app, inventory, history };
  for (const k of STATUS_KEYS) {
    const v = data[k];
    if (v) (f as unknown as Record<string, string>)[k] = v;
  }
  const { phase, ...fields } = f;
  const rest = consistentFields(phase, fields);
  switch (phase) {
    case "Verifying":
      if (rest.revision) return { ...rest, phase, revision: rest.revision, verifyStartedAt: rest.verifyStartedAt ?? rest.appliedAt ?? rest.updatedAt ?? new Date(0).toISOString() };
      break;
    case "Ready":
      if (rest.revision && rest.goodRevision) return { ...rest, phase, revision: rest.revision, goodRevision: rest.goodRevision };
      break;
    case "WaitingApproval":
      if (rest.pendingRevision) return { ...rest, phase, pendingRevision: rest.pendingRevision };
      break;
    case "Halted":
      if (rest.failedRevision) return { ...rest, phase, failedRevision: rest.failedRevision, message: rest.message ?? "halted" };
      break;
  }
  return rest;
}

/** Progress fields only mean something with what they belong to: a pre-check with its pending revision, a rollback's with Verifying. */
function consistentFields(phase: string | undefined, f: StateFields): StateFields {
  const out = { ...f };
  if (!out.pendingRevision) delete out.preChecks;
  if (phase !== "Verifying" || !out.rollbackFrom) {
    delete out.rollbackFrom;
    delete out.rollbackCause;
  }
  return out;
}

const FIELD_MANAGER = "plumber-state";
const STATUS_KEYS = [
  "branch",
  "revision",
  "phase",
  "goodRevision",
  "pendingRevision",
  "attemptedRevision",
  "lastResult",
  "message",
  "failedRevision",
  "failedSpec",
  "retryConsumed",
  "verifyStartedAt",
  "healthyAt",
  "verifyChecks",
  "preChecks",
  "rollbackFrom",
  "rollbackCause",
  "lastChanges",
  "actedBy",
  "appliedAt",
  "updatedAt",
  "warnings",
  "hashKeyId",
] as const;

export function stateObjectName(app: string): string {
  return `plumber-app-${app}`;
}

interface ConfigMap {
  metadata?: { name?: string };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

const INVENTORY_KEY = "inventory.json.gz";
const CHUNK_KEY = "inventory.json.gz.part";
/** Labels a chunk with its app, so a save can find every chunk of the app, including those a kill left behind. */
const CHUNK_OF_LABEL = "plumber.dev/state-chunk-of";

export class StateStore {
  private namespaceReady = false;
  /** Per app, the chunk generation the stored record points to ("" = inventory in the record), as last loaded or saved. */
  private readonly generations = new Map<string, string>();

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  private path(name: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps/${name}`;
  }

  async load(app: string): Promise<AppState | undefined> {
    let cm = await this.client.getOptional<ConfigMap>(this.path(stateObjectName(app)));
    if (!cm) return undefined;
    let inventory: InventoryEntry[];
    try {
      inventory = await this.loadInventory(app, cm);
    } catch (e) {
      // A reader (plumber status, a standby) racing the leader's save: the generation it read was
      // replaced and its chunks deleted meanwhile. Read once more; a record still unreadable fails.
      const again = await this.client.getOptional<ConfigMap>(this.path(stateObjectName(app)));
      if (!again || again.data?.inventoryGeneration === cm.data?.inventoryGeneration) throw e;
      cm = again;
      inventory = await this.loadInventory(app, cm);
    }
    const data = cm.data ?? {};
    const history = data.history ? (JSON.parse(data.history) as DeployRecord[]) : [];
    return stateFromFields(app, data, inventory, history);
  }

  /**
   * The app's status and history from its record alone (one GET), with an empty inventory: what
   * another app reads of it (a promotion's source), never to save back.
   */
  async loadStatus(app: string): Promise<AppState | undefined> {
    const cm = await this.client.getOptional<ConfigMap>(this.path(stateObjectName(app)));
    if (!cm) return undefined;
    const data = cm.data ?? {};
    const history = data.history ? (JSON.parse(data.history) as DeployRecord[]) : [];
    return stateFromFields(app, data, [], history);
  }

  private async loadInventory(app: string, cm: ConfigMap): Promise<InventoryEntry[]> {
    const data = cm.data ?? {};
    const generation = data.inventoryGeneration;
    let payload: Buffer | undefined;
    if (generation) {
      const count = Number(data.inventoryChunks);
      const chunks = [];
      for (let i = 0; i < count && i <= MAX_CHUNKS; i++) {
        const c = await this.client.getOptional<ConfigMap>(this.path(chunkObjectName(app, generation, i)));
        const part = c?.binaryData?.[CHUNK_KEY];
        chunks.push(c && { generation: c.data?.generation, index: c.data?.index, payload: part === undefined ? undefined : Buffer.from(part, "base64") });
      }
      payload = joinChunks(app, generation, count, chunks);
    } else {
      const inv = cm.binaryData?.[INVENTORY_KEY];
      payload = inv === undefined ? undefined : Buffer.from(inv, "base64");
    }
    const inventory = payload ? (JSON.parse(gunzipSync(payload).toString("utf8")) as InventoryEntry[]) : [];
    if (generation && String(inventory.length) !== data.inventoryEntries) {
      throw new Error(`state of app "${app}": inventory generation ${generation} holds ${inventory.length} entries, its record says ${data.inventoryEntries}; refusing to load it`);
    }
    this.generations.set(app, generation ?? "");
    return inventory;
  }

  /**
   * One request when the inventory fits the record or its chunks are unchanged. A new chunked
   * inventory: list the app's chunks, write the new generation's, switch the record to it in one
   * write, then delete the others — a kill before the switch leaves the old generation in force.
   */
  async save(state: AppState): Promise<void> {
    const payload = gzipSync(JSON.stringify(state.inventory));
    const data: Record<string, string> = { app: state.app, history: JSON.stringify(state.history) };
    for (const k of STATUS_KEYS) {
      const v = state[k];
      if (v) data[k] = v;
    }
    const layout = layoutOf(state.app, payload, state.inventory.length, Object.values(data).reduce((n, v) => n + Buffer.byteLength(v), 0));
    const body = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: stateObjectName(state.app),
        namespace: this.namespace,
        labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "app" },
      },
      data,
      ...(layout.kind === "single" ? { binaryData: { [INVENTORY_KEY]: payload.toString("base64") } } : {}),
    };
    if (layout.kind === "chunked") {
      data.inventoryGeneration = layout.generation;
      data.inventoryChunks = String(layout.parts.length);
      data.inventoryEntries = String(state.inventory.length);
    }
    const before = this.generations.get(state.app);
    const generation = layout.kind === "chunked" ? layout.generation : "";
    // Chunks other than this layout's can exist only when the record was or becomes chunked under another generation.
    const mayHaveStale = before !== generation && (generation !== "" || (before ?? "") !== "");
    await this.ensureNamespace();
    const stale = mayHaveStale ? (await this.chunksOf(state.app)).filter((n) => generation === "" || !n.startsWith(chunkPrefix(state.app, generation))) : [];
    if (layout.kind === "chunked" && before !== generation) await this.writeChunks(state.app, layout);
    await this.apply(stateObjectName(state.app), body);
    this.generations.set(state.app, generation);
    for (const name of stale) await this.deleteChunk(name);
  }

  private async writeChunks(app: string, layout: Extract<Layout, { kind: "chunked" }>): Promise<void> {
    for (const [i, part] of layout.parts.entries()) {
      const name = chunkObjectName(app, layout.generation, i);
      await this.apply(name, {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name,
          namespace: this.namespace,
          labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "chunk", [CHUNK_OF_LABEL]: app },
        },
        data: { app, generation: layout.generation, index: String(i) },
        binaryData: { [CHUNK_KEY]: part.toString("base64") },
      });
    }
  }

  private async chunksOf(app: string): Promise<string[]> {
    const res = await this.client.request<{ items: ConfigMap[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps`,
      query: { labelSelector: `${CHUNK_OF_LABEL}=${app}` },
      list: true,
    });
    return res.body.items.map((c) => c.metadata?.name ?? "").filter((n) => n.startsWith(chunkPrefix(app, "")));
  }

  private async deleteChunk(name: string): Promise<void> {
    try {
      await this.client.request({ method: "DELETE", path: this.path(name) });
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 404)) throw e;
    }
  }

  private async apply(name: string, body: object): Promise<void> {
    await this.client.request({
      method: "PATCH",
      path: this.path(name),
      query: { fieldManager: FIELD_MANAGER, force: "true" },
      contentType: "application/apply-patch+yaml",
      body: JSON.stringify(body),
    });
  }

  private async ensureNamespace(): Promise<void> {
    if (this.namespaceReady) return;
    await ensureNamespace(this.client, this.namespace);
    this.namespaceReady = true;
  }
}
