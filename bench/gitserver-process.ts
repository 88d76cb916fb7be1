// startGitServer in a child process (gitserver-child.ts), with the request counts read over HTTP.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { GitServerOptions } from "../src/local/gitserver.js";
import { fetchGitServerCounts } from "../test/bed/gitcounts.js";

export interface BenchGitServer {
  baseUrl: string;
  url(repoName: string): string;
  /** Requests received since the last reset. */
  count(): Promise<number>;
  resetCounts(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGitServerProcess(opts: Pick<GitServerOptions, "root" | "auth">): Promise<BenchGitServer> {
  const script = join(dirname(fileURLToPath(import.meta.url)), "gitserver-child.js");
  const child = spawn(process.execPath, [script, JSON.stringify(opts)], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  const first = await new Promise<string>((res, rej) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", res);
    child.once("exit", (code) => rej(new Error(`git server process exited (${code}) before it listened`)));
  });
  const { baseUrl } = JSON.parse(first) as { baseUrl: string };
  return {
    baseUrl,
    url: (repoName) => `${baseUrl}/${repoName.replace(/^\/+/, "")}${repoName.endsWith(".git") ? "" : ".git"}`,
    count: async () => (await fetchGitServerCounts(baseUrl)).total,
    resetCounts: async () => void (await fetchGitServerCounts(baseUrl, { reset: true })),
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
