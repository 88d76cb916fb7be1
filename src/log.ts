import { pino, type Logger } from "pino";

export type { Logger };

/** Paths that may carry secrets, whatever object they end up in. */
const REDACT = [
  "token",
  "password",
  "authorization",
  "*.token",
  "*.password",
  "*.authorization",
  "*.Authorization",
  "headers.authorization",
  "headers.Authorization",
  "auth.token",
  "auth.password",
];

export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.PLUMBER_LOG_LEVEL ?? "info";
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const base = { level, redact: { paths: REDACT, censor: "[redacted]" }, base: undefined };
  if (pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" } } });
  }
  return pino(base);
}

/** @internal For tests and the bench, which have no use for plumber's log lines. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
