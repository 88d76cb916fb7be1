// npm run bench: plumber against the local control plane and git server, side by side with
// kubectl where there is something to compare. Prints one table. Never a timed test.
import { benchCore } from "./core.js";
import { benchEngine } from "./engine.js";
import { benchFleet } from "./fleet.js";
import { benchGit, benchGitMemory } from "./git.js";
import { benchKustomize } from "./kustomize.js";
import { benchPerf } from "./perf.js";
import { benchService } from "./service.js";
import { benchShard } from "./shard.js";

const rows: [string, string][] = [];
const row = (k: string, v: string) => {
  rows.push([k, v]);
  process.stderr.write(`  ${k}: ${v}\n`);
};

/** Each section starts (and stops) what it needs; BENCH_ONLY=core,git,... picks sections. */
const SECTIONS: [string, () => Promise<void>][] = [
  ["core", () => benchCore(row)],
  ["engine", () => benchEngine(row)],
  ["git", () => benchGit(row)],
  ["gitMemory", () => benchGitMemory(row)],
  ["kustomize", () => benchKustomize(row)],
  ["service", () => benchService(row)],
  ["fleet", () => benchFleet(row)],
  ["shard", () => benchShard(row)],
  ["perf", () => benchPerf(row)],
];

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(",").map((x) => x.trim());
  let failed = false;
  for (const [name, run] of SECTIONS) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`--- bench section ${name}\n`);
    try {
      await run();
    } catch (e) {
      failed = true;
      row(`section ${name}`, `FAILED: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n| ${"measure".padEnd(w)} | value |\n|${"-".repeat(w + 2)}|-------|\n`);
  for (const [k, v] of rows) process.stdout.write(`| ${k.padEnd(w)} | ${v} |\n`);
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
