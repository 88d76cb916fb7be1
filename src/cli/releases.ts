// `plumber releases` and `plumber release NAME --now`.

import { releaseNow } from "../actions/release.js";
import { formatDuration } from "../config/duration.js";
import type { ReleaseScheduler } from "../releases/scheduler.js";
import { formatInZone } from "../releases/slots.js";
import type { ReleaseRecord } from "../state/release.js";
import { table } from "./commands.js";
import { EXIT_ERROR, EXIT_OK, type CommandContext } from "./context.js";

type Out = (line: string) => void;

const SHOWN_HISTORY = 5;

function describe(s: ReleaseScheduler): string {
  const r = s.release;
  const rev = r.revision.kind === "head" ? `head of ${r.repo}/${r.branch}` : `revision deployed to ${r.revision.app} at least ${formatDuration(r.revision.olderThanMs)} before the slot`;
  const flags = [`concurrency ${r.concurrency}`, r.skipIfUnchanged ? "skipIfUnchanged" : "", r.catchUpMs !== undefined ? `catchUp ${formatDuration(r.catchUpMs)}` : "", r.suspend ? "SUSPENDED" : ""]
    .filter(Boolean)
    .join(", ");
  return `${r.name}: "${r.schedule}" ${r.timezone}, ${rev} → cluster ${r.cluster}, namespace ${r.namespace} (${flags})`;
}

function historyRow(h: ReleaseRecord): Record<string, string> {
  return {
    slot: h.slot.replace(/\.000Z$/, "Z"),
    trigger: h.trigger + (h.by ? ` by ${h.by}` : ""),
    result: h.result + (h.count && h.count > 1 ? ` ×${h.count}` : ""),
    run: h.run ?? "",
    revision: h.revision?.slice(0, 12) ?? "",
    finished: h.finishedAt?.replace(/\.\d{3}Z$/, "Z") ?? "",
    message: (h.reason && h.reason !== h.result ? `${h.reason}: ` : "") + (h.message?.split("\n")[0] ?? ""),
  };
}

/** Each release: its schedule, the next fire times (its zone and UTC), the last outcomes. Reads only. */
export async function releasesCommand(ctx: CommandContext, out: Out, json: boolean): Promise<number> {
  const rt = await ctx.runtime();
  try {
    if (rt.releases.length === 0) {
      out(json ? "[]" : `no releases in ${ctx.config.file}`);
      return EXIT_OK;
    }
    const now = new Date();
    const rows: unknown[] = [];
    for (const s of rt.releases) {
      const { state, upcoming } = await s.status(now);
      const history = state?.history ?? [];
      if (json) {
        rows.push({
          name: s.release.name,
          schedule: s.release.schedule,
          timezone: s.release.timezone,
          suspend: s.release.suspend,
          next: upcoming.map((d) => ({ local: formatInZone(d, s.release.timezone), utc: d.toISOString() })),
          lastSlot: state?.lastSlot,
          releasedRevision: state?.releasedRevision,
          history,
        });
        continue;
      }
      out(describe(s));
      if (s.release.suspend) out("  next: none while suspended");
      for (const [i, d] of upcoming.entries()) out(`  ${i === 0 ? "next" : "    "}  ${formatInZone(d, s.release.timezone).padEnd(22)}  ${d.toISOString().replace(/\.000Z$/, "Z")}`);
      if (history.length === 0) out("  no runs yet");
      else out(table(history.slice(0, SHOWN_HISTORY).map(historyRow)).replace(/^/gm, "  "));
      out("");
    }
    if (json) out(JSON.stringify(rows, null, 2));
    return EXIT_OK;
  } finally {
    rt.close();
  }
}

/** Fires one run of the release at once, recorded as manual (src/actions/release.ts). */
export async function releaseNowCommand(ctx: CommandContext, out: Out, name: string): Promise<number> {
  const rt = await ctx.runtime();
  try {
    const r = await releaseNow(rt, name);
    out(r.message);
    return r.ok ? EXIT_OK : EXIT_ERROR;
  } finally {
    rt.close();
  }
}
