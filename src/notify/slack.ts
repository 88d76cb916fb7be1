// Slack incoming webhooks: {text, blocks}. `text` is a readable one-liner (also what Slack shows in
// notifications); the blocks repeat it with the fields laid out.

import { shortRevision, type Notification, type NotifyEvent, type SinkRequest } from "./types.js";

const EMOJI: Record<NotifyEvent, string> = {
  deployed: "✅",
  failed: "❌",
  rolledBack: "⏪",
  approvalNeeded: "✋",
  held: "⏸️",
  driftRepaired: "🔧",
  releaseFired: "🚀",
  releaseSucceeded: "✅",
  releaseFailed: "❌",
};

/** Slack mrkdwn needs &, < and > escaped in text that is not markup. */
export function slackEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** `code`, with backticks that would end it replaced. */
function code(s: string): string {
  return `\`${slackEscape(s).replace(/`/g, "'")}\``;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** The revision as `abc1234`, linked to the commit when there is a link. */
function revisionRef(n: Notification): string {
  const short = code(shortRevision(n.revision));
  // A URL in <url|label> must not contain | or >; commitUrl() never produces them.
  return n.commitUrl && !/[|<>\s]/.test(n.commitUrl) ? `<${n.commitUrl}|${short}>` : short;
}

function headline(n: Notification): string {
  const app = code(n.app ?? "?");
  const release = code(n.release ?? "?");
  const cluster = code(n.cluster);
  const rev = revisionRef(n);
  switch (n.event) {
    case "deployed":
      return `deployed app ${app} to cluster ${cluster} at ${rev}`;
    case "failed":
      return `deploy of app ${app} to cluster ${cluster} at ${rev} failed`;
    case "rolledBack":
      return `rolled back app ${app} on cluster ${cluster} to ${rev}`;
    case "approvalNeeded":
      return `app ${app} on cluster ${cluster} needs approval to deploy ${rev}`;
    case "held":
      return `app ${app} on cluster ${cluster} is held at ${rev}`;
    case "driftRepaired":
      return `repaired drift of app ${app} on cluster ${cluster} at ${rev}`;
    case "releaseFired":
      return `release ${release} fired on cluster ${cluster} at ${rev}`;
    case "releaseSucceeded":
      return `release ${release} succeeded on cluster ${cluster} at ${rev}`;
    case "releaseFailed":
      return `release ${release} failed on cluster ${cluster} at ${rev}`;
  }
  return `${slackEscape(String(n.event))} on cluster ${cluster} at ${rev}`;
}

/** The one-line text: "✅ deployed app `web` to cluster `prod` at <link|`abc1234`>: applied 3". */
export function slackText(n: Notification): string {
  const detail = [n.reason, n.message ?? n.result].filter((s): s is string => Boolean(s)).join(": ");
  const line = `${EMOJI[n.event] ?? "•"} ${headline(n)}${detail ? `: ${slackEscape(detail.replace(/\s*\n\s*/g, " "))}` : ""}`;
  return truncate(line, 2900);
}

export interface SlackPayload {
  text: string;
  blocks: Record<string, unknown>[];
}

export function slackPayload(n: Notification): SlackPayload {
  const text = slackText(n);
  const fields: { type: "mrkdwn"; text: string }[] = [];
  const field = (label: string, value: string | undefined, raw = false): void => {
    if (value) fields.push({ type: "mrkdwn", text: truncate(`*${label}*\n${raw ? value : slackEscape(value)}`, 1900) });
  };
  field("Event", n.event);
  if (n.app !== undefined) field("App", code(n.app), true);
  if (n.release !== undefined) field("Release", code(n.release), true);
  field("Cluster", code(n.cluster), true);
  field("Revision", revisionRef(n), true);
  field("Result", n.result);
  field("Reason", n.reason);
  const blocks: Record<string, unknown>[] = [
    { type: "section", text: { type: "mrkdwn", text } },
    { type: "section", fields: fields.slice(0, 10) },
  ];
  if (n.message) blocks.push({ type: "section", text: { type: "mrkdwn", text: truncate(`\`\`\`${slackEscape(n.message).replace(/```/g, "'''")}\`\`\``, 2900) } });
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: slackEscape(`plumber · ${n.timestamp}`) }] });
  return { text, blocks };
}

export function slackRequest(n: Notification): SinkRequest {
  return {
    body: Buffer.from(JSON.stringify(slackPayload(n)), "utf8"),
    headers: { "Content-Type": "application/json; charset=utf-8" },
  };
}
