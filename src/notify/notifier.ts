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
  const repoUrl = (repo: string | undefined): string => config.repos.find((r) => r.name === repo)?.url ?? "";
  return {
    observe(e) {
      const n = notificationOf(e, (what) => repoUrl(what.app !== undefined ? config.apps.find((a) => a.name === what.app)?.repo : config.releases.find((r) => r.name === what.release)?.repo));
      if (n) d.notify(n);
    },
    stats: () => ({ ...d.stats }),
    async close(flushMs = 2000) {
      await d.flush(flushMs);
      await d.close();
    },
  };
}

/** The notification for an event (undefined: nobody is told of it). `repoUrl` links the commit. */
export function notificationOf(e: ObservedEvent, repoUrl: (of: { app?: string; release?: string }) => string, now: Date = new Date()): Notification | undefined {
  const event = notifyEventOf(e);
  if (!event) return undefined;
  if (e.type === "deploy") {
    const url = repoUrl({ app: e.app });
    return {
      event,
      app: e.app,
      cluster: e.cluster,
      revision: e.revision,
      result: e.result,
      reason: e.reason,
      message: e.message,
      timestamp: now.toISOString(),
      commitUrl: e.revision ? commitUrl(url, e.revision) : undefined,
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
    commitUrl: revision ? commitUrl(repoUrl({ release: e.release }), revision) : undefined,
    timestamp: now.toISOString(),
  };
}
