// Generic webhooks: the Notification as JSON, signed GitHub-style when the sink has a secret.

import { createHmac, timingSafeEqual } from "node:crypto";
import type { Notification, SinkRequest } from "./types.js";

export const SIGNATURE_HEADER = "X-Plumber-Signature";
const EVENT_HEADER = "X-Plumber-Event";

/** "sha256=<hex HMAC-SHA256 of body>". */
export function signBody(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Does the header carry the signature of these exact bytes? What a receiver checks (README,
 * Notifications).
 * @internal plumber only signs; the tests check its signatures with this.
 */
export function verifySignature(body: Buffer | string, secret: string, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(signBody(body, secret));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

export function webhookRequest(n: Notification, secret?: string): SinkRequest {
  const body = Buffer.from(JSON.stringify(n), "utf8");
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    [EVENT_HEADER]: n.event,
  };
  if (secret) headers[SIGNATURE_HEADER] = signBody(body, secret);
  return { body, headers };
}
