// Signed-in browsers: a random session id in an HttpOnly, SameSite=Strict cookie names the token
// posted once at sign-in, the user the cluster said it is, and a CSRF token every form carries.
// Kept in memory only (a restart signs everyone out); bounded in number and lifetime.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Identity } from "./auth.js";

export interface Session {
  id: string;
  token: string;
  identity: Identity;
  csrf: string;
  expiresAt: number;
  /** A message for the next page (after an action's redirect), shown once. */
  flash?: string;
}

export const SESSION_COOKIE = "plumber_session";

export class Sessions {
  private readonly byId = new Map<string, Session>();

  constructor(
    private readonly ttlMs = 8 * 3600_000,
    private readonly max = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  create(token: string, identity: Identity): Session {
    // Oldest first in a Map: past the bound, the oldest sign-in goes.
    while (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value as string);
    const s: Session = { id: randomBytes(32).toString("base64url"), token, identity, csrf: randomBytes(32).toString("base64url"), expiresAt: this.now() + this.ttlMs };
    this.byId.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.byId.get(id);
    if (s && s.expiresAt <= this.now()) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }
}

/** Constant-time comparison of a form's CSRF token with the session's. */
export function csrfMatches(s: Session, given: string | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(s.csrf);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
