// The notification Observer: deploy and release events become notifications for the sinks
// configured under `notifications` (their URLs and secrets read from their files here).
import type { PlumberConfig } from "../config/types.js";
import { readSecretFile } from "../config/secrets.js";
import type { Logger } from "../log.js";
import type { ObservedEvent, Observer } from "../observe/events.js";
import { Dispatcher } from "./dispatcher.js";
import { commitUrl, isNotifyEvent, notifyEventOf, type Notification, type NotificationConfig } from "./types.js";

export interface Notifier extends Observer {
  stats(): { delivered: number; failed: number; dropped: number };
  close(flushMs?: number): Promise<void>;
}

export async function buildNotifier(config: Pick<PlumberConfig, "notifications" | "apps" | "releases" | "repos">, log: Logger): Promise<Notifier> {
  const configs: NotificationConfig[] = [];
  for (const s of config.notifications) {
    const url = await readSecretFile(s.urlFile, `notifications[${s.name}].urlFile`);
    const c: NotificationConfig = { name: s.name, type: s.type, url, on: s.on.filter(isNotifyEvent) };
    if (s.secretFile) c.secret = await readSecretFile(s.secretFile, `notifications[${s.name}].secretFile`);
    configs.push(c);
  }
  const d = new Dispatcher(configs, { log });
  // The repo an app deploys or a release reads from: its URL links the commit.
  const repoUrl = (e: ObservedEvent): string => {
    const repo = e.type === "deploy" ? config.apps.find((a) => a.name === e.app)?.repo : e.type === "release" ? config.releases.find((r) => r.name === e.release)?.repo : undefined;
    return config.repos.find((r) => r.name === repo)?.url ?? "";
  };
  return {
    observe(e) {
      const n = notificationOf(e, repoUrl(e));
      if (n) d.notify(n);
    },
    stats: () => ({ ...d.stats }),
    async close(flushMs = 2000) {
      await d.flush(flushMs);
      await d.close();
    },
  };
}

/** The notification for an event (undefined: nobody is told of it); `repoUrl` is the repo of its commit. */
export function notificationOf(e: ObservedEvent, repoUrl: string, now: Date = new Date()): Notification | undefined {
  const event = notifyEventOf(e);
  if (!event) return undefined;
  if (e.type === "deploy") {
    return {
      event,
      app: e.app,
      cluster: e.cluster,
      revision: e.revision,
      result: e.result,
      reason: e.reason,
      message: e.message,
      timestamp: now.toISOString(),
      commitUrl: e.revision ? commitUrl(repoUrl, e.revision) : undefined,
    };
  }
  if (e.type !== "release") return undefined;
  const r = e.record;
  const revision = r?.revision ?? "";
  return {
    event,
    release: e.release,
    cluster: e.cluster,
    revision,
    result: r?.result ?? e.step,
    reason: r?.reason,
    message: e.message ?? r?.message,
    commitUrl: revision ? commitUrl(repoUrl, revision) : undefined,
    timestamp: now.toISOString(),
  };
}
