// Config reload: on SIGHUP, or when the config file changes (watched, and polled as a fallback:
// a ConfigMap volume changes by swapping a symlink, which not every watcher reports). A new
// config is validated first — the file must load and the runtime it describes must build —
// and only then replaces the running one; an invalid config is refused, logged with every
// problem, and the old config keeps running.
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { loadConfig } from "../config/load.js";
import type { PlumberConfig } from "../config/types.js";
import type { Logger } from "../log.js";
import { formatProblem, FileProblemError } from "../types.js";

export type ReloadResult = "applied" | "refused" | "unchanged";

export interface ConfigReloaderOptions {
  path: string;
  /** The config running now. */
  current: PlumberConfig;
  log: Logger;
  /** Checks the candidate beyond loading it (e.g. builds its runtime) and switches to it; throws to refuse. */
  apply: (config: PlumberConfig) => Promise<void>;
  onResult?: (result: "applied" | "refused") => void;
  /** After every look at the file or signal, whatever came of it (tests count polls with it). */
  onCheck?: (result: ReloadResult) => void;
  /** Fallback poll of the file; default 5s. 0: no polling. */
  pollMs?: number;
  /** Coalesces bursts of file events; default 300ms. */
  debounceMs?: number;
}

export function configFingerprint(config: PlumberConfig): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex");
}

export class ConfigReloader {
  private current: string;
  private lastText?: string;
  /** The text of a file that was refused: not tried again until it changes (or SIGHUP). */
  private refusedText?: string;
  private running?: Promise<ReloadResult>;
  private again: "file" | "signal" | undefined;
  /** The callers waiting for the queued reload: resolved with its result. */
  private queued?: { promise: Promise<ReloadResult>; resolve: (r: ReloadResult | Promise<ReloadResult>) => void };
  private watcher?: FSWatcher;
  private poller?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: ConfigReloaderOptions) {
    this.current = configFingerprint(opts.current);
  }

  /** Starts watching the file. */
  async start(): Promise<void> {
    this.lastText = await readFile(this.opts.path, "utf8").catch(() => undefined);
    const file = basename(this.opts.path);
    try {
      // The directory, not the file: editors and kubelet replace the file rather than write it.
      this.watcher = watch(dirname(this.opts.path), { persistent: false }, (_event, name) => {
        if (!name || name === file || name.startsWith("..")) this.schedule();
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      // no watcher on this file system: polling covers it
    }
    const pollMs = this.opts.pollMs ?? 5000;
    if (pollMs > 0) {
      // Straight to reload (not through the debounce, which a poll shorter than it would keep resetting).
      this.poller = setInterval(() => {
        if (!this.stopped) void this.reload("file");
      }, pollMs);
      this.poller.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload("file"), this.opts.debounceMs ?? 300);
    this.debounce.unref();
  }

  /**
   * Loads the file and, if it differs from the running config, validates and applies it. "signal"
   * (SIGHUP) always re-applies, even an unchanged config: it re-reads the secret files.
   */
  async reload(why: "file" | "signal"): Promise<ReloadResult> {
    if (this.running) {
      // One at a time; the latest request runs once the current one is done, and its callers
      // get that run's result (a SIGHUP during a poll is answered by the SIGHUP's own reload).
      this.again = this.again === "signal" || why === "signal" ? "signal" : "file";
      if (!this.queued) {
        let resolve: (r: ReloadResult | Promise<ReloadResult>) => void = () => {};
        const promise = new Promise<ReloadResult>((r) => (resolve = r));
        this.queued = { promise, resolve };
      }
      return this.queued.promise;
    }
    this.running = this.doReload(why)
      .then((result) => {
        this.opts.onCheck?.(result);
        return result;
      })
      .finally(() => {
        this.running = undefined;
        const next = this.again;
        const queued = this.queued;
        this.again = undefined;
        this.queued = undefined;
        if (next && !this.stopped) queued?.resolve(this.reload(next));
        else queued?.resolve("unchanged");
      });
    return this.running;
  }

  private async doReload(why: "file" | "signal"): Promise<ReloadResult> {
    const { log, path } = this.opts;
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if (why === "file") return "unchanged"; // mid-swap, or gone: the old config keeps running
      return this.refuse(undefined, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (why === "file" && (text === this.lastText || text === this.refusedText)) return "unchanged";
    if (why === "file") {
      // A file written in place (not swapped) can be read half-written: take only a text that
      // stays the same for a moment, else wait for the next change event or poll.
      await new Promise((r) => setTimeout(r, Math.min(this.opts.debounceMs ?? 300, 100)));
      const again = await readFile(path, "utf8").catch(() => undefined);
      if (again !== text) {
        this.schedule();
        return "unchanged";
      }
    }
    this.lastText = text;
    let config: PlumberConfig;
    try {
      config = await loadConfig(path);
    } catch (e) {
      const problems = e instanceof FileProblemError ? e.problems.map(formatProblem) : [e instanceof Error ? e.message : String(e)];
      return this.refuse(text, problems.join("\n"), problems);
    }
    const fp = configFingerprint(config);
    if (why === "file" && fp === this.current) return "unchanged";
    try {
      await this.opts.apply(config);
    } catch (e) {
      return this.refuse(text, e instanceof Error ? e.message : String(e));
    }
    this.current = fp;
    this.refusedText = undefined;
    log.info({ config: path, trigger: why, apps: config.apps.length }, "config reloaded");
    this.opts.onResult?.("applied");
    return "applied";
  }

  private refuse(text: string | undefined, message: string, problems?: string[]): ReloadResult {
    this.refusedText = text;
    this.opts.log.error({ config: this.opts.path, err: message, problems }, "config reload refused; the running config stays in effect");
    this.opts.onResult?.("refused");
    return "refused";
  }
}
