// A promoted app's source, as the reconciler sees it: the source app's status record read from
// the source's own cluster (one GET, no inventory chunks), turned into the revision to deploy.
import type { AppState } from "../state/store.js";
import { describeSelection, selectCandidate } from "./select.js";

/** What a promoted app follows this cycle. */
export interface PromotionTarget {
  /** The source's newest soaked revision; undefined: none qualifies yet. */
  revision?: string;
  /** The branch the source deployed it from (a fetch of the commit names it). */
  branch?: string;
  /** One line for status and the approval message (which revision, since when, what was skipped). */
  note: string;
}

export interface PromotionSourceDeps {
  source: string;
  soakMs: number;
  /** The source cluster's wrong-cluster guard: nothing is read from a cluster that is not the one named. */
  guard?: () => Promise<void>;
  /** The source app's record (StateStore.loadStatus in its cluster). */
  load: () => Promise<AppState | undefined>;
  now: () => Date;
}

/** The promoted app's target: one read of the source's record per call, then the pure selection. */
export function promotionSource(d: PromotionSourceDeps): () => Promise<PromotionTarget> {
  return async () => {
    await d.guard?.();
    const selection = selectCandidate(d.source, await d.load(), d.now(), d.soakMs);
    return {
      ...(selection.revision ? { revision: selection.revision } : {}),
      ...(selection.branch ? { branch: selection.branch } : {}),
      note: describeSelection(d.source, selection, d.soakMs),
    };
  };
}
