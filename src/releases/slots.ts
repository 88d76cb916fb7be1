// Slot math for scheduled releases: which cron slot fires now, which were missed, when the next
// one comes. Pure: the caller passes the time ("now"); nothing here reads the clock.
//
// One cron engine, croner, computes every slot — the next one to wait for, the ones missed while
// plumber was down, the times `plumber releases` prints — so firing and catch-up can never
// disagree. croner evaluates a pattern in an IANA time zone from any given date, forwards and
// backwards, and handles DST the way a wall clock reads: a slot inside the spring-forward gap
// (02:30 on 2026-03-08 in America/New_York) moves to the first instant after the gap and fires
// once; a slot inside the repeated fall-back hour fires once, at its first occurrence.

import { Cron } from "croner";

/** A 5-field cron expression (or @hourly/@daily/@weekly/@monthly/@yearly) in an IANA time zone. */
export class CronSchedule {
  private readonly cron: Cron;

  constructor(
    readonly expression: string,
    readonly timezone: string = "UTC",
  ) {
    // paused: evaluation only, croner never starts a timer of its own.
    this.cron = new Cron(expression, { timezone, mode: "5-part", paused: true });
  }

  /** The first slot strictly after `after`, or undefined when the expression never fires again. */
  next(after: Date): Date | undefined {
    let from = after;
    // croner strips milliseconds and, around a DST gap, may hand back a time equal to `from`
    // (02:00 moved to 03:00 followed by the real 03:00); step past it.
    for (let i = 0; i < 4; i++) {
      const n = this.cron.nextRun(from);
      if (!n) return undefined;
      if (n.getTime() > after.getTime()) return n;
      from = new Date(Math.max(n.getTime(), from.getTime()) + 1000);
    }
    return undefined;
  }

  /** The newest slot at or before `at`, or undefined when there is none. */
  latest(at: Date): Date | undefined {
    // previousRuns is strictly before its (millisecond-stripped) reference; slots are whole minutes.
    const [p] = this.cron.previousRuns(1, new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000));
    return p && p.getTime() <= at.getTime() ? p : undefined;
  }

  /** The next `n` slots strictly after `after`, oldest first. */
  upcoming(after: Date, n: number): Date[] {
    const out: Date[] = [];
    let t = after;
    while (out.length < n) {
      const s = this.next(t);
      if (!s) break;
      out.push(s);
      t = s;
    }
    return out;
  }
}

/** At most this many missed slots are counted one by one (each costs a croner evaluation). */
export const MAX_COUNTED_SLOTS = 100;

export interface MissedSlots {
  /** How many slots were missed (at least this many when `more` is set). */
  count: number;
  /** More than `count` slots were missed; counting stopped. */
  more: boolean;
  first?: Date;
  last?: Date;
}

export interface SlotDecision {
  /** The slot to fire now: the newest slot due, when it is inside the catch-up window. */
  fire?: Date;
  /** Slots that came due and will not fire (older than `fire`, or all when outside the window). */
  missed: MissedSlots;
  /** The newest slot that came due (fired or missed); what becomes the release's lastSlot. */
  newest?: Date;
  /** The next slot after now. */
  next?: Date;
}

/**
 * What to do at `now` given that every slot up to and including `after` was already dealt with
 * (fired, skipped or recorded as missed). After downtime the slots that came due fire once in
 * total: the newest of them fires when it is at most `catchUpMs` late (no limit when undefined,
 * like a CronJob without startingDeadlineSeconds); all others are missed.
 */
export function decideSlots(schedule: CronSchedule, after: Date, now: Date, catchUpMs?: number): SlotDecision {
  const missed: MissedSlots = { count: 0, more: false };
  const first = schedule.next(after);
  if (!first || first.getTime() > now.getTime()) return { missed, ...(first ? { next: first } : {}) };

  // Walk the due slots forward, at most MAX_COUNTED_SLOTS of them.
  const due: Date[] = [first];
  let t = first;
  let complete = false;
  while (due.length <= MAX_COUNTED_SLOTS) {
    const n = schedule.next(t);
    if (!n || n.getTime() > now.getTime()) {
      complete = true;
      break;
    }
    due.push(n);
    t = n;
  }
  let newest = due[due.length - 1] as Date;
  if (!complete) {
    const latest = schedule.latest(now);
    if (latest && latest.getTime() > newest.getTime()) newest = latest;
  }
  const lateMs = now.getTime() - newest.getTime();
  const fire = catchUpMs === undefined || lateMs <= catchUpMs ? newest : undefined;

  const missedList = fire ? due.filter((d) => d.getTime() !== fire.getTime()) : due;
  missed.count = missedList.length;
  missed.more = !complete;
  if (!complete && !fire) {
    // The newest slot found by latest() is missed too, beyond the counted ones.
    missed.last = newest;
  } else if (missedList.length > 0) {
    missed.last = missedList[missedList.length - 1];
  }
  if (missedList.length > 0) missed.first = missedList[0];
  if (!missed.last) delete missed.last;
  if (!missed.first) delete missed.first;

  const next = schedule.next(now);
  return { ...(fire ? { fire } : {}), missed, newest, ...(next ? { next } : {}) };
}

/** The slot as a run-name suffix and label value: yyyymmddhhmm in UTC. */
export function slotId(slot: Date): string {
  return slot.toISOString().replace(/[-:T]/g, "").slice(0, 12);
}

/** A manual fire's id: yyyymmddhhmmss in UTC. */
export function manualId(at: Date): string {
  return at.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/** The time in a zone as "2026-03-08 03:30 EDT". */
export function formatInZone(d: Date, timezone: string): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  }).formatToParts(d);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")} ${get("timeZoneName")}`;
}

/** Calendar fields of an instant in a zone (for date placeholders). */
export function zonedFields(d: Date, timezone: string): { year: string; month: string; day: string; hour: string; minute: string; second: string } {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).formatToParts(d);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? "";
  return { year: get("year"), month: get("month"), day: get("day"), hour: get("hour"), minute: get("minute"), second: get("second") };
}
