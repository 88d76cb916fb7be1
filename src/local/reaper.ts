// A tiny detached watchdog: kills the sandbox's child processes (etcd, kube-apiserver) and removes
// their temp dir when the process that started them is gone, even if that process was SIGKILLed
// and so never ran its own exit handlers.
//
// The watchdog is plain JavaScript run with `node -e`, so it works the same whether the caller
// runs from TypeScript sources (vitest) or from compiled dist/.
import { spawn } from "node:child_process";

export interface ReaperOptions {
  /** The pid to watch; default: this process. */
  parentPid?: number;
  /**
   * Processes to kill (SIGTERM, then SIGKILL after graceMs) once the parent is gone. If all of
   * them exit first, the watchdog exits too (without removing dirs). May be empty: then it only
   * removes `dirs` once the parent is gone, unless disarmed.
   */
  pids: number[];
  /** Directories to remove after the processes are dead. */
  dirs?: string[];
  /** Poll interval, default 500 ms. */
  intervalMs?: number;
  /** Grace between SIGTERM and SIGKILL, default 3000 ms. */
  graceMs?: number;
}

export interface Reaper {
  pid: number;
  /** Stop watching without killing anything (call after an orderly shutdown). */
  disarm(): void;
}

const REAPER_SOURCE = String.raw`
"use strict";
const fs = require("fs");
const cfg = JSON.parse(process.argv[process.argv.length - 1]);
function startTime(pid) {
  try {
    const stat = fs.readFileSync("/proc/" + pid + "/stat", "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] || "";
  } catch (e) { return null; }
}
function alive(p) {
  try { process.kill(p.pid, 0); } catch (e) { if (e.code !== "EPERM") return false; }
  // Guard against pid reuse: the process must still be the one we were told about.
  if (p.start !== null) { const s = startTime(p.pid); if (s !== null && s !== p.start) return false; }
  return true;
}
const parent = { pid: cfg.parent, start: startTime(cfg.parent) };
const kids = cfg.pids.map((pid) => ({ pid, start: startTime(pid) }));
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => {});
process.on("SIGHUP", () => {});
let reaping = false;
const timer = setInterval(() => {
  if (reaping) return;
  // Everything already stopped in an orderly way: nothing left to guard.
  if (kids.length > 0 && !kids.some(alive)) { clearInterval(timer); process.exit(0); }
  if (alive(parent)) return;
  reaping = true;
  clearInterval(timer);
  for (const k of kids) if (alive(k)) { try { process.kill(k.pid, "SIGTERM"); } catch (e) {} }
  const deadline = Date.now() + cfg.graceMs;
  const wait = setInterval(() => {
    const left = kids.filter(alive);
    if (left.length > 0 && Date.now() < deadline) return;
    clearInterval(wait);
    for (const k of left) { try { process.kill(k.pid, "SIGKILL"); } catch (e) {} }
    setTimeout(() => {
      for (const d of cfg.dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch (e) {} }
      process.exit(0);
    }, left.length > 0 ? 200 : 0);
  }, 100);
}, cfg.intervalMs);
`;

/** Starts the watchdog, detached in its own session, not holding this process's event loop. */
export function spawnReaper(opts: ReaperOptions): Reaper {
  const cfg = {
    parent: opts.parentPid ?? process.pid,
    pids: opts.pids,
    dirs: opts.dirs ?? [],
    intervalMs: opts.intervalMs ?? 500,
    graceMs: opts.graceMs ?? 3000,
  };
  const child = spawn(process.execPath, ["-e", REAPER_SOURCE, JSON.stringify(cfg)], {
    detached: true,
    stdio: "ignore",
    // Keep the watchdog from inheriting loaders/flags of the caller (vitest, tsx, --inspect...).
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  child.on("error", () => {});
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the sandbox reaper process");
  return {
    pid,
    disarm() {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    },
  };
}
