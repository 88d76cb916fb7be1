// A git repository on the local filesystem that `plumber demo` commits to and the local git
// server serves: a bare repo plus a work clone to make commits in, driven by the git CLI.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, resolve, sep } from "node:path";

const AUTHOR = { name: "plumber demo", email: "demo@plumber.invalid" } as const;

// Commits must not depend on the user's git config (signing hooks, autocrlf, default branch).
const GIT_CONFIG = [
  "-c", "commit.gpgsign=false",
  "-c", "tag.gpgsign=false",
  "-c", "core.autocrlf=false",
  "-c", "core.symlinks=true",
  "-c", "init.defaultBranch=main",
  "-c", "safe.directory=*",
  "-c", "advice.detachedHead=false",
];

/** Runs git (no shell) with no user or system config, as `author`; resolves to trimmed stdout. */
export function runLocalGit(args: string[], opts: { cwd?: string; author?: { name: string; email: string } } = {}): Promise<string> {
  const author = opts.author ?? AUTHOR;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/",
    LANG: "C",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  };
  return new Promise((res, rej) => {
    execFile("git", [...GIT_CONFIG, ...args], { cwd: opts.cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`git ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
      else res(stdout.trim());
    });
  });
}

const runGit = (args: string[], cwd?: string): Promise<string> => runLocalGit(args, { cwd });

/** A path relative to a work tree, refused when it would leave it or touch .git. */
export function checkRelPath(p: string, who = "LocalRepo"): string {
  const n = normalize(p);
  if (!p || isAbsolute(p) || n === ".." || n.startsWith(".." + sep) || n.split(sep).includes(".git")) {
    throw new Error(`${who}: path must be relative inside the repo: ${p}`);
  }
  return n;
}

export class LocalRepo {
  private constructor(
    readonly bareDir: string,
    private readonly workDir: string,
    readonly branch: string,
  ) {}

  /** Creates the bare repo `<root>/<name>.git` (must not exist) and a work clone under `<root>/.work/`. */
  static async create(root: string, name: string, branch = "main"): Promise<LocalRepo> {
    const bareDir = resolve(root, `${name}.git`);
    if (existsSync(bareDir)) throw new Error(`LocalRepo: ${bareDir} already exists`);
    await mkdir(dirname(bareDir), { recursive: true });
    await runGit(["init", "--quiet", "--bare", `--initial-branch=${branch}`, bareDir]);
    const workRoot = resolve(root, ".work");
    await mkdir(workRoot, { recursive: true });
    const workDir = await mkdtemp(join(workRoot, `${name.replace(/[^\w.-]/g, "_")}-`));
    await runGit(["init", "--quiet", `--initial-branch=${branch}`, workDir]);
    await runGit(["remote", "add", "origin", bareDir], workDir);
    return new LocalRepo(bareDir, workDir, branch);
  }

  /**
   * Writes files (relative paths; `null` deletes), commits everything and pushes to the bare
   * repo. Returns the new commit's sha.
   */
  async commit(files: Record<string, string | null>, message: string): Promise<string> {
    for (const [rel, content] of Object.entries(files)) {
      const p = join(this.workDir, checkRelPath(rel));
      await rm(p, { recursive: true, force: true });
      if (content === null) continue;
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, content);
    }
    await runGit(["add", "--all"], this.workDir);
    await runGit(["commit", "--quiet", "--allow-empty", "--no-verify", "-m", message], this.workDir);
    const sha = await runGit(["rev-parse", "HEAD"], this.workDir);
    await runGit(["push", "--quiet", "origin", `HEAD:refs/heads/${this.branch}`], this.workDir);
    return sha;
  }
}
