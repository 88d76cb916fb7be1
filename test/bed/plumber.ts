// Test support: `plumber run` as a real child process (the compiled dist/ build), its JSON log
// lines, its /metrics, and signals. Used by the service integration tests; a watchdog kills the
// child if the test process dies first.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { findRepoRoot } from "./paths.js";
import { spawnReaper, type Reaper } from "../../src/local/reaper.js";

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export function plumberMain(): string {
  const main = join(findRepoRoot(), "dist", "src", "cli", "main.js");
  if (!existsSync(join(findRepoRoot(), "dist", "src", "service", "daemon.js"))) {
    throw new Error(`${main} is missing or stale: run \`npm run build\` first (npm test does)`);
  }
  return main;
}

export class PlumberProcess {
  readonly lines: LogLine[] = [];
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitedAt?: number;
  private readonly child: ChildProcess;
  private readonly reaper: Reaper;
  private waiters: Array<() => void> = [];

  private constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [plumberMain(), ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    this.reaper = spawnReaper({ pids: [this.child.pid as number], graceMs: 1000 });
    let buf = "";
    this.child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
      }
      this.wake();
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString("utf8");
    });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        this.exitedAt = Date.now();
        this.reaper.disarm();
        this.wake();
        resolve({ code, signal });
      });
    });
  }

  /** `plumber <args>`; env is added to this process's (PLUMBER_LOG_LEVEL defaults to info). */
  static start(args: string[], env: NodeJS.ProcessEnv = {}): PlumberProcess {
    return new PlumberProcess(args, { ...process.env, PLUMBER_LOG_LEVEL: "info", ...env });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.exitedAt === undefined;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The first log line (already seen or to come) matching `pred`. */
  async waitFor(pred: (l: LogLine) => boolean, timeoutMs = 30_000, what = "log line"): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (!this.running) throw new Error(`plumber exited before ${what}:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Base URL of /metrics, /healthz, /readyz (the process must run with --metrics-addr). */
  async baseUrl(): Promise<string> {
    const l = await this.waitFor((x) => x.msg === "serving /metrics, /healthz and /readyz", 30_000, "metrics server");
    return `http://${String(l.addr)}`;
  }

  async scrape(): Promise<Metrics> {
    const res = await fetch(`${await this.baseUrl()}/metrics`);
    if (res.status !== 200) throw new Error(`/metrics: ${res.status}`);
    return new Metrics(await res.text());
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  tail(n = 30): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l));
    if (this.stderr) out.push(`stderr: ${this.stderr.slice(-2000)}`);
    return out.join("\n");
  }

  /** SIGKILL (after SIGCONT, in case it was stopped) and wait. */
  async kill(): Promise<void> {
    if (this.running) {
      this.child.kill("SIGCONT");
      this.child.kill("SIGKILL");
    }
    await this.exited;
  }
}

/** A parsed Prometheus text exposition. */
export class Metrics {
  readonly series = new Map<string, number>();

  constructor(readonly text: string) {
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
      if (m) this.series.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
    }
  }

  /** The sum of every series of `name` whose labels include `labels`; undefined when there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    let sum: number | undefined;
    for (const [key, v] of this.series) {
      const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key);
      if (!m || m[1] !== name) continue;
      const have = new Map([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
      if (Object.entries(labels).every(([k, want]) => have.get(k) === want)) sum = (sum ?? 0) + v;
    }
    return sum;
  }
}
