// Where the demo would start the dashboard and print its URL (issue #14's `plumber dashboard`).
// No dashboard exists in this build yet: the hook answers undefined and the demo prints no URL.
// Once one does, this starts it in-process on the demo's config (loopback, a free port).
import type { CommandContext } from "./context.js";

export interface DemoDashboard {
  url: string;
  close(): Promise<void>;
}

export async function demoDashboard(_ctx: CommandContext): Promise<DemoDashboard | undefined> {
  return undefined;
}
