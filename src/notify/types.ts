// Notifications: what plumber tells people and systems about deploys and releases.

import { DEPLOY_OUTCOMES, type ObservedEvent } from "../observe/events.js";

/** The events, as written in a sink's `on` list (config/plumber.schema.json, $defs.notification): each deploy outcome, and three of a release. */
export const NOTIFY_EVENTS = [...DEPLOY_OUTCOMES, "releaseFired", "releaseSucceeded", "releaseFailed"] as const;

export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export function isNotifyEvent(s: string): s is NotifyEvent {
  return (NOTIFY_EVENTS as readonly string[]).includes(s);
}

/** The one place an observed event gets its notification name; undefined: no notification. */
export function notifyEventOf(e: ObservedEvent): NotifyEvent | undefined {
  if (e.type === "deploy") return e.outcome;
  if (e.type !== "release") return undefined;
  switch (e.step) {
    case "fired":
      return "releaseFired";
    case "finished":
      return e.record?.result === "Succeeded" ? "releaseSucceeded" : "releaseFailed";
    case "error":
    case "missed":
      return "releaseFailed";
    default:
      return undefined;
  }
}

export interface Notification {
  event: NotifyEvent;
  app?: string;
  release?: string;
  cluster: string;
  /** The git revision (full sha) concerned. */
  revision: string;
  /** Short outcome, e.g. "applied 3, pruned 1" or "Succeeded". */
  result: string;
  reason?: string;
  message?: string;
  /** A link to the commit, see commitUrl(). */
  commitUrl?: string;
  /** ISO 8601. */
  timestamp: string;
}

/** A sink, resolved from the config: the URL and secret are read from their files already. */
export interface NotificationConfig {
  name: string;
  type: "slack" | "webhook";
  /** The URL to POST to; for Slack the URL itself is a secret: it is never logged. */
  url: string;
  /** webhook only: the HMAC-SHA256 key of X-Plumber-Signature. */
  secret?: string;
  on: NotifyEvent[];
}

/** One HTTP request to a sink: the exact body bytes and the headers. */
export interface SinkRequest {
  body: Buffer;
  headers: Record<string, string>;
}

/** The first 7 characters of a full hex sha; anything else unchanged. */
export function shortRevision(revision: string): string {
  return /^[0-9a-f]{40}([0-9a-f]{24})?$/i.test(revision) ? revision.slice(0, 7) : revision;
}

/**
 * A web link to a commit, for https repo URLs of GitHub, GitLab, Gitea/Forgejo, Bitbucket and the
 * like: `.git` and any trailing slash are stripped, then github.com → /commit/<sha>, a host with
 * "gitlab" in its name → /-/commit/<sha>, bitbucket.org → /commits/<sha>, others /commit/<sha>.
 * Undefined for non-https URLs, URLs with credentials, query or fragment, and non-hex shas.
 */
export function commitUrl(repoUrl: string, sha: string): string | undefined {
  if (!/^[0-9a-f]{7,64}$/i.test(sha)) return undefined;
  let u: URL;
  try {
    u = new URL(repoUrl);
  } catch {
    return undefined;
  }
  if (u.protocol !== "https:" || u.username || u.password || u.search || u.hash) return undefined;
  let path = u.pathname.replace(/\/+$/, "").replace(/\.git$/, "").replace(/\/+$/, "");
  if (path === "" || path === "/") return undefined;
  if (!path.startsWith("/")) path = `/${path}`;
  const host = u.hostname.toLowerCase();
  const base = `https://${u.host}${path}`;
  if (host === "github.com" || host === "www.github.com") return `${base}/commit/${sha}`;
  if (host === "bitbucket.org") return `${base}/commits/${sha}`;
  if (host.split(".").some((label) => label.includes("gitlab"))) return `${base}/-/commit/${sha}`;
  return `${base}/commit/${sha}`;
}
