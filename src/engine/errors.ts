import { KubeApiError } from "../kube/client.js";
import { FORCE_ANNOTATION } from "./annotations.js";

interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** Messages the apiserver (and CEL rules, by convention) use for a field that cannot change. */
const IMMUTABLE = /immutable|may not change|cannot change|cannot be changed|cannot be updated|is not allowed to change/i;

/** The fields an Invalid (422) answer says cannot change in place; empty if it is not that. */
export function immutableFields(e: unknown): string[] {
  if (!(e instanceof KubeApiError) || e.status !== 422) return [];
  const causes = ((e.details as { causes?: StatusCause[] } | undefined)?.causes ?? []).filter((c) => IMMUTABLE.test(c.message ?? ""));
  if (causes.length === 0 && IMMUTABLE.test(e.message)) return ["(field not named by the server)"];
  return [...new Set(causes.map((c) => c.field || "(field not named by the server)"))];
}

/** A server error for people: the reason, the fields at fault, the server's message. */
export function errorText(e: unknown): string {
  if (e instanceof KubeApiError) {
    const fields = immutableFields(e);
    if (fields.length > 0) {
      return `immutable field ${fields.join(", ")} cannot be changed in place; set the annotation ${FORCE_ANNOTATION}: enabled to delete and recreate the object (${e.reason}: ${e.message})`;
    }
    const causes = ((e.details as { causes?: StatusCause[] } | undefined)?.causes ?? []).filter((c) => c.field);
    const named = causes.length > 0 && !causes.every((c) => c.field && e.message.includes(c.field)) ? ` [fields: ${causes.map((c) => c.field).join(", ")}]` : "";
    return `${e.reason}: ${e.message}${named}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** The write lost the race for the object to another writer (claims.ts): nothing of this app's is left on it (unless `marked`). */
export class LostClaim extends Error {
  constructor(
    message: string,
    /** This app's marks may still be on the object (giving it up failed): keep it known. */
    readonly marked = false,
  ) {
    super(message);
    this.name = "LostClaim";
  }
}

/** What a failed change-set entry (or PlanError) carries of the error that failed it, as flags, not text. */
export interface FailureFlags {
  /** The server or the network was at fault: the same revision may go through later. */
  transient?: true;
  /** The apiserver's reason (KubeApiError.reason: Invalid, Conflict, Forbidden, WriteRefused...). */
  reason?: string;
}

export function failureFlags(e: unknown): FailureFlags {
  // Another writer took the object between the check and the write: the next try checks again.
  if (e instanceof LostClaim) return { transient: true, reason: "Conflict" };
  if (!(e instanceof KubeApiError)) return {};
  // A server error that names no reason is the apiserver failing on this one object (a value the
  // server-side apply typed patch cannot take answers 500 with no Status reason), not an outage:
  // InternalError, ServiceUnavailable, Timeout, TooManyRequests and the network's own are.
  const transient = e.transient && e.reason !== "Unknown" && e.reason !== "";
  return { ...(transient ? { transient: true as const } : {}), reason: e.reason };
}
