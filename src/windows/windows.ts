// Sync windows: when an app may move to a new revision. A window is open from each time its
// cron schedule fires, for `duration`. Deny wins: no new revision is applied while a deny window
// is open; with allow windows, only while one of them is open.
import { Cron } from "croner";
import type { SyncWindow } from "../config/types.js";

export type { SyncWindow };

export interface WindowVerdict {
  /** A new revision may be applied now. */
  sync: boolean;
  /** Drift may be repaired now. */
  driftRepair: boolean;
  /** Why not, and when that changes (when sync is false). */
  reason?: string;
}

const crons = new Map<string, Cron>();

function cronOf(w: Pick<SyncWindow, "schedule" | "timezone">): Cron {
  const key = `${w.timezone}\0${w.schedule}`;
  let c = crons.get(key);
  if (!c) {
    c = new Cron(w.schedule, { timezone: w.timezone, paused: true });
    crons.set(key, c);
  }
  return c;
}

/** The end of the window's current opening, if it is open at `now`. */
export function openUntil(w: SyncWindow, now: Date): Date | undefined {
  const cron = cronOf(w);
  // The first fire time after (now - duration): open iff it is not after now.
  let start = cron.nextRun(new Date(now.getTime() - w.durationMs - 1));
  let end: Date | undefined;
  while (start && start.getTime() <= now.getTime()) {
    const e = new Date(start.getTime() + w.durationMs);
    if (!end || e > end) end = e;
    start = cron.nextRun(start);
  }
  return end && end.getTime() > now.getTime() ? end : undefined;
}

/** The verdict at `now` (the reconciler's clock: windows never read the wall clock themselves). */
export function evaluateWindows(windows: SyncWindow[], now: Date): WindowVerdict {
  if (windows.length === 0) return { sync: true, driftRepair: true };
  const deny = windows.filter((w) => w.kind === "deny");
  const allow = windows.filter((w) => w.kind === "allow");
  for (const w of deny) {
    const until = openUntil(w, now);
    if (until) return { sync: false, driftRepair: w.allowDriftRepair, reason: `deny window "${w.schedule}" (${w.timezone}) is open until ${until.toISOString()}` };
  }
  if (allow.length === 0 || allow.some((w) => openUntil(w, now))) return { sync: true, driftRepair: true };
  const next = allow
    .map((w) => cronOf(w).nextRun(now))
    .filter((d): d is Date => d !== null)
    .sort((a, b) => a.getTime() - b.getTime())[0];
  return {
    sync: false,
    driftRepair: allow.every((w) => w.allowDriftRepair),
    reason: `outside the allow windows${next ? ` (next opens at ${next.toISOString()})` : ""}`,
  };
}
