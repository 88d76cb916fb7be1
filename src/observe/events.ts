// One vocabulary for what plumber reports. The reconciler, the poller, the release scheduler and
// the engine's per-object callback emit these; metrics, Kubernetes Events, notifications and logs
// are Observers of them. Nothing here knows how an event is shown.

import type { ChangeSetEntry } from "../engine/changeset.js";
import type { ReleaseRecord } from "../state/release.js";
import type { SourceRecord } from "../state/source.js";

/** The outcome of a deploy step worth telling people about (the notification names in config `on`). */
export type DeployOutcome = "deployed" | "failed" | "rolledBack" | "approvalNeeded" | "held" | "driftRepaired";

/** Every DeployOutcome, in the order the config schema lists them. */
export const DEPLOY_OUTCOMES = ["deployed", "failed", "rolledBack", "approvalNeeded", "held", "driftRepaired"] as const satisfies readonly DeployOutcome[];

/** What one reconcile of one app ended with (the CycleResult kinds, plus "aborted" for shutdown/reload). */
export type CycleOutcome = "unchanged" | "applied" | "repaired" | "rolledBack" | "failed" | "held" | "checking" | "verifying" | "aborted";

/** What a scheduled release did (src/releases/scheduler.ts). */
export type ReleaseStep = "fired" | "skipped" | "missed" | "finished" | "cancelled" | "error";

/** A repo's ref listing, as the poller last saw it. */
export interface SourceHealthView {
  /** Unix ms of the first failed listing of the current outage; undefined while listings work. */
  failingSince?: number;
  /** Unix ms of the last listing that worked. */
  lastGoodAt?: number;
  error?: string;
}

/** An app's source record written this cycle: `next` when its source started failing, `previous` (the outage's) when cleared. */
export interface SourceRecordChange {
  app: string;
  cluster: string;
  next?: SourceRecord;
  previous?: SourceRecord;
}

/** An object that another field manager keeps taking back (src/reconcile/contested.ts). */
export interface ContestNoticeEvent {
  kind: "contested" | "resolved";
  key: string;
  managers: string[];
  strikes: number;
  nextInChecks?: number;
}

export type ObservedEvent =
  /** A deploy step's outcome, emitted once per transition (not per cycle). */
  | { type: "deploy"; outcome: DeployOutcome; app: string; cluster: string; revision: string; result: string; reason?: string; message?: string }
  /** One reconcile of one app finished (or threw). `message` for failed; contest = what drift review saw this cycle. */
  | {
      type: "cycle";
      app: string;
      cluster: string;
      outcome: CycleOutcome;
      revision?: string;
      failedRevision?: string;
      message?: string;
      /**
       * For "failed": the apiserver's reason for the error that ended the cycle, when it was a
       * KubeApiError (WriteRefused: plumber refused its own write, standby or shutting down).
       */
      errorReason?: string;
      /** Created/configured/pruned... counts of what this cycle wrote, as "applied 3, pruned 1". */
      changes?: string;
      durationMs: number;
      contest?: { contested: number; deferred: number; notices: ContestNoticeEvent[] };
    }
  /** One object of a change set (created, configured, pruned, failed...). */
  | { type: "object"; app: string; cluster: string; entry: ChangeSetEntry }
  /** A scheduled release fired, skipped, missed, finished, was cancelled or hit an error. */
  | { type: "release"; step: ReleaseStep; release: string; cluster: string; record?: ReleaseRecord; message?: string }
  /** After every ref listing of a repo; `transition` and `changes` only when its state changed. */
  | { type: "source"; repo: string; apps: string[]; health: SourceHealthView; transition?: "failing" | "recovered"; changes: SourceRecordChange[] };

export interface Observer {
  observe(e: ObservedEvent): void;
}

/** An observer that tells several; one that throws does not keep the others from hearing. */
export function fanOut(observers: Observer[], onError: (e: unknown) => void = () => {}): Observer {
  return {
    observe(e) {
      for (const o of observers) {
        try {
          o.observe(e);
        } catch (err) {
          onError(err);
        }
      }
    },
  };
}
