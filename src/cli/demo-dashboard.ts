// The dashboard (`plumber dashboard`) beside the tour: started in-process on the demo's config with
// a runtime of its own (its reads are not plumber's work, so they stay out of each step's cost),
// on loopback, where its read-only pages are public; refreshed after every step so it follows.
import { startDashboard, type Dashboard } from "../dashboard/server.js";
import type { CommandContext } from "./context.js";

export interface DemoDashboard {
  url: string;
  /** Reads the fleet again now (the page updates live). */
  refresh(): Promise<void>;
  /** The fleet page's HTML, as a browser gets it. */
  fleetPage(): Promise<string>;
  close(): Promise<void>;
}

export async function demoDashboard(ctx: CommandContext): Promise<DemoDashboard> {
  const rt = await ctx.runtime();
  let d: Dashboard;
  try {
    d = await startDashboard({ rt, listen: "127.0.0.1:0", publicReads: false, refreshMs: 1000, log: ctx.log });
  } catch (e) {
    rt.close();
    throw e;
  }
  return {
    url: d.url,
    refresh: () => d.refresh(),
    fleetPage: async () => {
      const res = await fetch(d.url);
      return res.text();
    },
    close: async () => {
      await d.close();
      rt.close();
    },
  };
}
