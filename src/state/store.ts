import { gunzipSync, gzipSync } from "node:zlib";
import { ensureNamespace } from "../kube/namespace.js";
import type { KubeClient } from "../kube/client.js";
import type { InventoryEntry } from "../engine/inventory.js";

/**
 * Per-app state kept in the target cluster itself (a ConfigMap per app in the state namespace),
 * so a restarted plumber — or another replica — neither re-applies unchanged objects nor forgets
 * what it must prune. Status fields stay readable with kubectl; the inventory is gzipped JSON.
 */

export type LastResult = "Applied" | "DriftRepaired" | "Failed" | "RolledBack";

/**
 * Verifying: applied, health gating or post-checks under way (a restart resumes them).
 * Ready: healthy. WaitingApproval: pendingRevision waits for `plumber approve`.
 * Halted: a failure that needs a person (the rollback failed too, or rollback is off).
 */
export type Phase = "Verifying" | "Ready" | "WaitingApproval" | "Halted";

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
}

export const HISTORY_LIMIT = 20;

export interface AppState {
  app: string;
  /** The branch the applied revision came from (for an app with a branchPattern, the one it picked). */
  branch?: string;
  /** The revision last applied successfully: what the cluster follows. */
  revision?: string;
  phase?: Phase;
  /** The last revision that passed health and post-checks: where a rollback goes. */
  goodRevision?: string;
  /** A revision planned and waiting for approval. */
  pendingRevision?: string;
  /** The last `plumber retry` request acted on. */
  retryConsumed?: string;
  verifyStartedAt?: string;
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

export function recordDeploy(state: AppState, rec: DeployRecord): void {
  state.history = [rec, ...state.history].slice(0, HISTORY_LIMIT);
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
  "lastChanges",
  "appliedAt",
  "updatedAt",
  "warnings",
  "hashKeyId",
] as const;

export function stateObjectName(app: string): string {
  return `plumber-app-${app}`;
}

interface ConfigMap {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export class StateStore {
  private namespaceReady = false;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  private path(app: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps/${stateObjectName(app)}`;
  }

  async load(app: string): Promise<AppState | undefined> {
    const cm = await this.client.getOptional<ConfigMap>(this.path(app));
    if (!cm) return undefined;
    const data = cm.data ?? {};
    const state: AppState = { app, inventory: [], history: [] };
    for (const k of STATUS_KEYS) {
      const v = data[k];
      if (v) (state as unknown as Record<string, string>)[k] = v;
    }
    const inv = cm.binaryData?.["inventory.json.gz"];
    if (inv) state.inventory = JSON.parse(gunzipSync(Buffer.from(inv, "base64")).toString("utf8")) as InventoryEntry[];
    if (data.history) state.history = JSON.parse(data.history) as DeployRecord[];
    return state;
  }

  async save(state: AppState): Promise<void> {
    const data: Record<string, string> = { app: state.app, history: JSON.stringify(state.history) };
    for (const k of STATUS_KEYS) {
      const v = state[k];
      if (v) data[k] = v;
    }
    const body = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: stateObjectName(state.app),
        namespace: this.namespace,
        labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "app" },
      },
      data,
      binaryData: { "inventory.json.gz": gzipSync(JSON.stringify(state.inventory)).toString("base64") },
    };
    await this.ensureNamespace();
    await this.client.request({
      method: "PATCH",
      path: this.path(state.app),
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
