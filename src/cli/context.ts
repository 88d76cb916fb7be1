import { loadConfig } from "../config/load.js";
import type { PlumberConfig } from "../config/types.js";
import { createLogger, type Logger } from "../log.js";
import { buildRuntime, type Runtime } from "../reconcile/runtime.js";

export interface GlobalOptions {
  config: string;
  logLevel?: string;
  cacheDir?: string;
}

export interface CommandContext {
  config: PlumberConfig;
  log: Logger;
  runtime(only?: string[]): Promise<Runtime>;
}

export async function commandContext(opts: GlobalOptions, logDefaults: { level?: string } = {}): Promise<CommandContext> {
  const log = createLogger({ level: opts.logLevel ?? logDefaults.level });
  const config = await loadConfig(opts.config);
  return {
    config,
    log,
    runtime: (only) => buildRuntime(config, { log, cacheDir: opts.cacheDir, only: only && only.length ? only : undefined }),
  };
}

/** Exit codes: 0 fine, 1 error, 2 changes pending (plan). */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_CHANGES = 2;
