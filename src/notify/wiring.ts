import type { NotificationSinkConfig } from "../config/types.js";
import { readSecretFile } from "../config/secrets.js";
import type { Logger } from "../log.js";
import type { AppEvent } from "../reconcile/app.js";
import type { ReleaseEvent } from "../releases/scheduler.js";
import { Dispatcher } from "./dispatcher.js";
import { commitUrl, isNotifyEvent, type NotificationConfig, type NotifyEvent } from "./types.js";

/** Turns app and release events into notifications for the configured sinks. */
export interface Notifier {
  app(e: AppEvent, repoUrl: string): void;
  release(e: ReleaseEvent, cluster: string, repoUrl: string): void;
  stats(): { delivered: number; failed: number; dropped: number };
  close(flushMs?: number): Promise<void>;
}

export async function buildNotifier(sinks: NotificationSinkConfig[], log: Logger): Promise<Notifier> {
  const configs: NotificationConfig[] = [];
  for (const s of sinks) {
    const url = await readSecretFile(s.urlFile, `notifications[${s.name}].urlFile`);
    const c: NotificationConfig = { name: s.name, type: s.type, url, on: s.on.filter(isNotifyEvent) };
    if (s.secretFile) c.secret = await readSecretFile(s.secretFile, `notifications[${s.name}].secretFile`);
    configs.push(c);
  }
  const d = new Dispatcher(configs, { log });
  return {
    app(e, repoUrl) {
      d.notify({ ...e, timestamp: new Date().toISOString(), commitUrl: e.revision ? commitUrl(repoUrl, e.revision) : undefined });
    },
    release(e, cluster, repoUrl) {
      const r = e.record;
      let event: NotifyEvent | undefined;
      if (e.type === "fired") event = "releaseFired";
      else if (e.type === "finished") event = r?.result === "Succeeded" ? "releaseSucceeded" : "releaseFailed";
      else if (e.type === "error" || e.type === "missed") event = "releaseFailed";
      if (!event) return;
      const revision = r?.revision ?? "";
      d.notify({
        event,
        release: e.release,
        cluster,
        revision,
        result: r?.result ?? e.type,
        reason: r?.reason,
        message: e.message ?? r?.message,
        commitUrl: revision ? commitUrl(repoUrl, revision) : undefined,
        timestamp: new Date().toISOString(),
      });
    },
    stats: () => ({ ...d.stats }),
    async close(flushMs = 2000) {
      await d.flush(flushMs);
      await d.close();
    },
  };
}
