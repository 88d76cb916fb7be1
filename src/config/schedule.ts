// The schedules a config may write: cron expressions in IANA time zones, for sync windows and
// scheduled releases. Checked here, where the config is validated; src/windows and
// src/releases/slots evaluate what passed, with the same cron engine (croner).
import { Cron } from "croner";

export function isValidTimeZone(tz: string): boolean {
  if (tz === "") return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A release's schedule: why the expression or time zone is refused, or undefined when both are fine. */
export function checkSchedule(expression: string, timezone: string): { field: "schedule" | "timezone"; message: string } | undefined {
  if (!isValidTimeZone(timezone)) {
    return { field: "timezone", message: `unknown time zone "${timezone}" (expected an IANA name such as UTC, Europe/Berlin or America/New_York)` };
  }
  let cron: Cron;
  try {
    // The mode releases/slots.ts evaluates in: 5 fields, no seconds.
    cron = new Cron(expression, { timezone, mode: "5-part", paused: true });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/^CronPattern: /, "");
    return { field: "schedule", message: `invalid cron expression: ${msg} (expected 5 fields: minute hour day-of-month month day-of-week)` };
  }
  if (!cron.nextRun(new Date())) return { field: "schedule", message: "the cron expression never fires" };
  return undefined;
}

/** A sync window's schedule/timezone problem; undefined when it is fine. */
export function checkWindowSchedule(schedule: string, timezone: string): string | undefined {
  try {
    new Cron(schedule, { timezone, paused: true }).nextRun();
    return undefined;
  } catch (e) {
    return `invalid schedule or timezone: ${(e as Error).message}`;
  }
}
