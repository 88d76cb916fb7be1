/**
 * Where the reconciler reads the time: every timestamp it writes to state, the sync-window verdict
 * and the gates' decisions. Tests pass a clock they move by hand, so nothing waits on the wall clock.
 * Durations (how long a cycle took) stay on the process's own monotonic time, not this.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export function isoNow(clock: Clock): string {
  return clock.now().toISOString();
}
