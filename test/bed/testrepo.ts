// Git repositories for tests, on the filesystem and the git CLI only (no server involved), so any
// process (test workers included) can create and change the repos a git server serves.
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, symlink as fsSymlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { checkRelPath as checkLocalPath, runLocalGit } from "../../src/local/repo.js";

export const TEST_AUTHOR = { name: "Plumber Test", email: "plumber-test@example.invalid" } as const;

/** Marks a file value in commit() as a symlink to `target` instead of file contents. */
export interface SymlinkSpec {
  symlink: string;
}
/** Marks a file value in commit() as an executable file. */
export interface ExecutableSpec {
  executable: string;
}
export type FileSpec = string | null | SymlinkSpec | ExecutableSpec;

export interface CommitOptions {
  /** Branch to commit to; default: the repo's default branch. A branch that does not exist yet
   * starts from the default branch's head (or as a root commit in an empty repo). */
  branch?: string;
}

/** Runs git with an argument array (no shell) as the test author; resolves to trimmed stdout. */
export function git(args: string[], cwd?: string): Promise<string> {
  return runLocalGit(args, { cwd, author: TEST_AUTHOR });
}

const checkRelPath = (p: string): string => checkLocalPath(p, "TestRepo");

export class TestRepo {
  private constructor(
    /** The repo's name: served as `<name>.git` under the git server's root. */
    readonly name: string,
    /** `<root>/<name>.git` */
    readonly bareDir: string,
    /** Work clone used to make commits: a fresh dir under `<root>/.work/`. */
    readonly workDir: string,
    readonly defaultBranch: string,
  ) {}

  /**
   * Creates the bare repo `<root>/<name>.git` (must not exist) and a work clone under
   * `<root>/.work/`. `opts.branch` is the default branch (HEAD), default "main".
   */
  static async create(root: string, name: string, opts: { branch?: string } = {}): Promise<TestRepo> {
    const branch = opts.branch ?? "main";
    const bareDir = resolve(root, `${name}.git`);
    if (existsSync(bareDir)) throw new Error(`TestRepo: ${bareDir} already exists`);
    await mkdir(dirname(bareDir), { recursive: true });
    await git(["init", "--quiet", "--bare", `--initial-branch=${branch}`, bareDir]);
    // Served over HTTP by `git http-backend` with GIT_HTTP_EXPORT_ALL; the marker also lets
    // other daemons export it.
    await writeFile(join(bareDir, "git-daemon-export-ok"), "");
    return TestRepo.attach(root, bareDir, name, branch);
  }

  /** Opens an existing bare repo `<root>/<name>.git` (e.g. one created by another process). */
  static async open(root: string, name: string): Promise<TestRepo> {
    const bareDir = resolve(root, `${name}.git`);
    const headRef = await git(["--git-dir", bareDir, "symbolic-ref", "HEAD"]);
    return TestRepo.attach(root, bareDir, name, headRef.replace(/^refs\/heads\//, ""));
  }

  private static async attach(root: string, bareDir: string, name: string, branch: string): Promise<TestRepo> {
    // Work clones live under <root>/.work/ so removing the root removes everything.
    const workRoot = resolve(root, ".work");
    await mkdir(workRoot, { recursive: true });
    const workDir = await mkdtemp(join(workRoot, `${name.replace(/[^\w.-]/g, "_")}-`));
    await git(["init", "--quiet", `--initial-branch=${branch}`, workDir]);
    await git(["remote", "add", "origin", bareDir], workDir);
    return new TestRepo(name, bareDir, workDir, branch);
  }

  /** `file://` URL of the bare repo (for tests that bypass HTTP). */
  get fileUrl(): string {
    return `file://${this.bareDir}`;
  }

  /** Commit sha of `branch` (default: the default branch) in the bare repo. */
  async head(branch: string = this.defaultBranch): Promise<string> {
    return git(["--git-dir", this.bareDir, "rev-parse", "--verify", `refs/heads/${branch}^{commit}`]);
  }

  /** Branch names in the bare repo. */
  async branches(): Promise<string[]> {
    const out = await git(["--git-dir", this.bareDir, "for-each-ref", "--format=%(refname:short)", "refs/heads/"]);
    return out ? out.split("\n") : [];
  }

  /** Creates branch `name` at `from` (a branch name or commit sha; default: the default branch). */
  async createBranch(name: string, from: string = this.defaultBranch): Promise<string> {
    const sha = await this.resolveRev(from);
    await git(["--git-dir", this.bareDir, "update-ref", `refs/heads/${name}`, sha, ""]);
    return sha;
  }

  async deleteBranch(name: string): Promise<void> {
    await git(["--git-dir", this.bareDir, "update-ref", "-d", `refs/heads/${name}`]);
  }

  /** Moves `branch` to `rev` (a sha or branch), e.g. to simulate a force-push/rollback. */
  async resetBranch(branch: string, rev: string): Promise<string> {
    const sha = await this.resolveRev(rev);
    await git(["--git-dir", this.bareDir, "update-ref", `refs/heads/${branch}`, sha]);
    return sha;
  }

  /** Creates a lightweight tag at `rev` (default: the default branch). */
  async tag(name: string, rev: string = this.defaultBranch): Promise<string> {
    const sha = await this.resolveRev(rev);
    await git(["--git-dir", this.bareDir, "update-ref", `refs/tags/${name}`, sha, ""]);
    return sha;
  }

  /**
   * Writes files (relative to the repo root; `null` deletes; `{symlink}` makes a symlink;
   * `{executable}` an executable file), commits everything and pushes to the bare repo.
   * Returns the new commit's sha. An empty `files` makes an empty commit.
   */
  async commit(
    files: Record<string, FileSpec>,
    message = "test commit",
    opts: CommitOptions = {},
  ): Promise<string> {
    const branch = opts.branch ?? this.defaultBranch;
    await this.checkout(branch);
    for (const [rel, spec] of Object.entries(files)) {
      const p = join(this.workDir, checkRelPath(rel));
      await rm(p, { recursive: true, force: true });
      if (spec === null) continue;
      await mkdir(dirname(p), { recursive: true });
      if (typeof spec === "string") {
        await writeFile(p, spec);
      } else if ("symlink" in spec) {
        await fsSymlink(spec.symlink, p);
      } else {
        await writeFile(p, spec.executable);
        await chmod(p, 0o755);
      }
    }
    await git(["add", "--all"], this.workDir);
    await git(["commit", "--quiet", "--allow-empty", "--no-verify", "-m", message], this.workDir);
    const sha = await git(["rev-parse", "HEAD"], this.workDir);
    await git(["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`], this.workDir);
    return sha;
  }

  /** Commits a symlink `path` -> `target` (for testing that symlinks are refused). */
  async symlink(path: string, target: string, message = `symlink ${path}`, opts: CommitOptions = {}): Promise<string> {
    return this.commit({ [path]: { symlink: target } }, message, opts);
  }

  /** Removes the work clone (the bare repo stays). */
  async cleanup(): Promise<void> {
    await rm(this.workDir, { recursive: true, force: true });
  }

  /** Also removes the bare repo. */
  async destroy(): Promise<void> {
    await this.cleanup();
    await rm(this.bareDir, { recursive: true, force: true });
  }

  private async resolveRev(rev: string): Promise<string> {
    return git(["--git-dir", this.bareDir, "rev-parse", "--verify", `${rev}^{commit}`]);
  }

  /** Puts the work clone on `branch` as the bare repo has it (others may have pushed). */
  private async checkout(branch: string): Promise<void> {
    await git(["fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*"], this.workDir);
    const remoteHas = async (b: string) =>
      git(["rev-parse", "--verify", "--quiet", `refs/remotes/origin/${b}^{commit}`], this.workDir).then(
        () => true,
        () => false,
      );
    let start: string | undefined;
    if (await remoteHas(branch)) start = `refs/remotes/origin/${branch}`;
    else if (await remoteHas(this.defaultBranch)) start = `refs/remotes/origin/${this.defaultBranch}`;
    if (start) {
      await git(["checkout", "--quiet", "--force", "-B", branch, start], this.workDir);
      await git(["clean", "--quiet", "-fdx"], this.workDir);
    } else {
      // Empty repo: start an orphan branch with an empty tree.
      await git(["checkout", "--quiet", "--force", "--orphan", branch], this.workDir);
      await git(["rm", "--quiet", "-rf", "--cached", "--ignore-unmatch", "."], this.workDir);
      await git(["clean", "--quiet", "-fdx"], this.workDir);
    }
  }
}
