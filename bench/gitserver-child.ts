// The benches' git server, in a process of its own as a real one would be: run in plumber's
// process, its `git http-backend` children are forked from a heap of 10k objects, and each fork
// stalls plumber's event loop for tens of milliseconds that no real deployment pays.
//   node gitserver-child.js '{"root": "...", "auth": {...}}'  → prints {"baseUrl": "..."} on stdout
import { startGitServer, type GitServerOptions } from "../src/local/gitserver.js";
import { STATS_PATH } from "../test/bed/gitcounts.js";

const opts = JSON.parse(process.argv[2] ?? "{}") as GitServerOptions;
const git = await startGitServer({ ...opts, statsPath: STATS_PATH });
process.stdout.write(`${JSON.stringify({ baseUrl: git.baseUrl })}\n`);
const stop = (): void => void git.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
// The bench died without stopping it: go with it.
process.stdin.on("end", stop);
process.stdin.resume();
