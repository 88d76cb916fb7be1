import type { AppControl } from "../state/control.js";
import type { AppState } from "../state/store.js";

/** The revision this cycle works towards, and the requests (pin, retry) that chose it. */
export interface Target {
  /** A pin (`plumber rollback`/`pin`) wins over the branch head; undefined: nothing to follow. */
  revision?: string;
  pinned: boolean;
  /** A `plumber retry` not yet acted on: clears the failure that keeps a revision held. */
  retryAt?: string;
}

export function selectTarget(head: string | undefined, control: AppControl, state: AppState): Target {
  const retryAt = control.retryAt !== undefined && control.retryAt !== state.retryConsumed ? control.retryAt : undefined;
  return { revision: control.pinRevision ?? head, pinned: Boolean(control.pinRevision), ...(retryAt !== undefined ? { retryAt } : {}) };
}
