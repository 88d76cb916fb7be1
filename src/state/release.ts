// Per-release state in the target cluster: a ConfigMap `plumber-release-<name>` in the state
// namespace, next to the apps' `plumber-app-<app>`. It decides what fires: the last slot dealt
// with, and the history of runs. Every write is an update with a resourceVersion precondition,
// so two plumbers (restarts, replicas) that decide the same thing race on the write and exactly
// one wins; the loser gets 409 Conflict, reloads, and sees the slot taken.

import type { KubeClient } from "../kube/client.js";
import { ensureNamespace } from "../kube/namespace.js";
import { KubeApiError } from "../kube/client.js";

export type ReleaseResult =
  /** Slot claimed; the run is not created yet (a crash here is finished by the next tick). */
  | "Claimed"
  /** Run created; its outcome is not known yet. */
  | "Running"
  | "Succeeded"
  | "Failed"
  /** Cancelled by plumber (concurrency: replace) or by someone else. */
  | "Cancelled"
  /** Not fired on purpose: forbid with a run still going, skipIfUnchanged, no revision. */
  | "Skipped"
  /** Came due while plumber was not running and is outside the catch-up window (or older). */
  | "Missed";

export const OPEN_RESULTS: ReadonlySet<ReleaseResult> = new Set(["Claimed", "Running"]);

/** One slot (or manual trigger) of a release, newest first in ReleaseState.history. */
export interface ReleaseRecord {
  /** The scheduled time (UTC, ISO 8601); for a manual run, when it was requested. */
  slot: string;
  trigger: "scheduled" | "manual";
  result: ReleaseResult;
  /** The run's name, for fired slots. */
  run?: string;
  apiVersion?: string;
  kind?: string;
  revision?: string;
  /** When the slot was claimed. */
  firedAt?: string;
  finishedAt?: string;
  /** The run's condition reason (e.g. Succeeded, Failed, Cancelled, BackoffLimitExceeded). */
  reason?: string;
  message?: string;
  /** A manual run from the dashboard: who asked (the TokenReview username). */
  by?: string;
  /** For a Missed record standing for several slots: how many, the oldest being `firstSlot`. */
  count?: number;
  firstSlot?: string;
}

export const RELEASE_HISTORY_LIMIT = 20;

export interface ReleaseState {
  release: string;
  /** When plumber first saw this release: slots before it never fire. */
  since: string;
  /** The newest slot dealt with (fired, skipped or missed). */
  lastSlot?: string;
  /** Revision of the newest run that did not fail, for skipIfUnchanged. */
  releasedRevision?: string;
  history: ReleaseRecord[];
  /** The ConfigMap's resourceVersion this state was read at (undefined: not stored yet). */
  resourceVersion?: string;
}

export function releaseStateName(release: string): string {
  return `plumber-release-${release}`;
}

/** Newest first; open records (Claimed, Running) are never dropped, finished ones beyond the limit are. */
export function trimHistory(history: ReleaseRecord[], limit = RELEASE_HISTORY_LIMIT): ReleaseRecord[] {
  const open = history.filter((r) => OPEN_RESULTS.has(r.result)).length;
  let keepFinished = Math.max(0, limit - open);
  return history.filter((r) => {
    if (OPEN_RESULTS.has(r.result)) return true;
    if (keepFinished > 0) {
      keepFinished--;
      return true;
    }
    return false;
  });
}

interface ConfigMap {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

/** The outcome of update(): written, nothing to write, or lost to another writer. */
export type UpdateOutcome<T> = { written: true; state: ReleaseState; value: T } | { written: false; state: ReleaseState; value: T };

export class ReleaseStateStore {
  private namespaceReady = false;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  private collection(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps`;
  }

  private path(release: string): string {
    return `${this.collection()}/${releaseStateName(release)}`;
  }

  async load(release: string): Promise<ReleaseState | undefined> {
    const cm = await this.client.getOptional<ConfigMap>(this.path(release));
    if (!cm) return undefined;
    const d = cm.data ?? {};
    const state: ReleaseState = { release, since: d.since ?? new Date(0).toISOString(), history: [] };
    if (d.lastSlot) state.lastSlot = d.lastSlot;
    if (d.releasedRevision) state.releasedRevision = d.releasedRevision;
    if (d.history) {
      try {
        state.history = JSON.parse(d.history) as ReleaseRecord[];
      } catch {
        state.history = [];
      }
    }
    if (cm.metadata?.resourceVersion) state.resourceVersion = cm.metadata.resourceVersion;
    return state;
  }

  /**
   * Writes `state` if the ConfigMap is still at state.resourceVersion (or, without one, does not
   * exist yet). Returns the stored state, or undefined when someone else wrote first (409).
   */
  async write(state: ReleaseState): Promise<ReleaseState | undefined> {
    const data: Record<string, string> = {
      release: state.release,
      since: state.since,
      history: JSON.stringify(trimHistory(state.history)),
    };
    if (state.lastSlot) data.lastSlot = state.lastSlot;
    if (state.releasedRevision) data.releasedRevision = state.releasedRevision;
    const metadata: Record<string, unknown> = {
      name: releaseStateName(state.release),
      namespace: this.namespace,
      labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "release", "plumber.dev/release": state.release },
    };
    if (state.resourceVersion) metadata.resourceVersion = state.resourceVersion;
    const body = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata, data });
    try {
      let res;
      if (state.resourceVersion) {
        res = await this.client.request<ConfigMap>({ method: "PUT", path: this.path(state.release), body });
      } else {
        await this.ensureNamespace();
        res = await this.client.request<ConfigMap>({ method: "POST", path: this.collection(), body });
      }
      const { resourceVersion: _old, ...rest } = state;
      const stored: ReleaseState = { ...rest, history: trimHistory(state.history) };
      if (res.body?.metadata?.resourceVersion) stored.resourceVersion = res.body.metadata.resourceVersion;
      return stored;
    } catch (e) {
      // 409: Conflict (resourceVersion moved) or AlreadyExists (created meanwhile). 404 on PUT:
      // deleted meanwhile. Either way someone else's view won; the caller reloads.
      if (e instanceof KubeApiError && (e.conflict || (e.notFound && state.resourceVersion))) return undefined;
      throw e;
    }
  }

  /**
   * Optimistic read-modify-write: `mutate` changes a fresh copy of the state and returns a value;
   * returning `false` as `changed` means there is nothing to write. On a conflict the state is
   * reloaded and `mutate` runs again on it (it must decide again from what it sees).
   */
  async update<T>(
    release: string,
    init: () => ReleaseState,
    mutate: (state: ReleaseState) => { changed: boolean; value: T },
    attempts = 5,
  ): Promise<UpdateOutcome<T>> {
    for (let i = 0; ; i++) {
      const current = (await this.load(release)) ?? init();
      const copy: ReleaseState = structuredClone(current);
      const { changed, value } = mutate(copy);
      if (!changed) return { written: false, state: current, value };
      const stored = await this.write(copy);
      if (stored) return { written: true, state: stored, value };
      if (i + 1 >= attempts) throw new Error(`release ${release}: state kept changing under us (${attempts} conflicts in a row)`);
    }
  }

  private async ensureNamespace(): Promise<void> {
    if (this.namespaceReady) return;
    await ensureNamespace(this.client, this.namespace);
    this.namespaceReady = true;
  }
}
