// Repo URLs the git layer cannot use, and unreadable auth/CA files, are reported with the
// config's file:line:col of the field (issue 9 item 10, issue 10 item 7).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { readConfigFile, readSecretFile } from "../../src/config/secrets.js";
import { validateRepoUrl } from "../../src/git/url.js";
import { CommitVerifier } from "../../src/signing/verify.js";
import { FileProblemError } from "../../src/types.js";

function config(url: string, ...more: string[]): string {
  return [
    "clusters:",
    "  - name: prod",
    "repos:",
    "  - name: infra",
    `    url: ${url}`,
    "    interval: 1m",
    ...more,
    "apps:",
    "  - name: tasks",
    "    repo: infra",
    "    branch: main",
    "    path: tekton",
    "    cluster: prod",
    "    namespace: ci",
    "",
  ].join("\n");
}

function problems(text: string, file = "/cfg/c.yaml"): string[] {
  try {
    parseConfig(text, file);
    return [];
  } catch (e) {
    if (!(e instanceof FileProblemError)) throw e;
    return e.problems.map((p) => `${path.basename(p.file)}:${p.line}:${p.column}: ${p.field}: ${p.message}`);
  }
}

describe("repo URL validation in the config", () => {
  it("refuses every shape the git layer cannot use, at the url value, with one validator", () => {
    const cases: [string, RegExp][] = [
      ["https://git.example.com/r.git?ref=main", /\?ref= is kustomize's remote-target syntax/],
      ["https://git.example.com/r.git?private_token=abc", /must not have a query string/],
      ["https://git.example.com/r.git#main", /fragment/],
      ["https://user@git.example.com/r.git", /credentials/],
      ["ftp://git.example.com/r.git", /ftp:\/\/ URLs are not supported/],
      ["ssh://git@git.example.com/r.git", /ssh:\/\/ URLs are not supported/],
      ["git@github.com:org/r.git", /scp-style/],
      ['"https://git.example.com/r .git"', /whitespace/],
    ];
    for (const [url, msg] of cases) {
      const p = problems(config(url));
      expect(p, url).toHaveLength(1);
      expect(p[0], url).toMatch(/^c\.yaml:5:10: repos\[0\]\.url: /);
      expect(p[0], url).toMatch(msg);
      expect(p[0], url).not.toContain("abc");
      // The git layer refuses the same URLs (one validator, two callers).
      expect(() => validateRepoUrl(url.replace(/^"|"$/g, "")), url).toThrow();
    }
    expect(problems(config("https://git.example.com/r.git"))).toEqual([]);
  });
});

describe("auth and CA files named by the config", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "plumber-cfgfiles-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a missing tokenFile names file:line:col of the field", async () => {
    const file = path.join(dir, "plumber.yaml");
    const cfg = parseConfig(config("https://git.example.com/r.git", "    auth:", "      tokenFile: secrets/missing-token"), file);
    const err = await readSecretFile(cfg.repos[0]!.auth!.tokenFile!, "repos[infra].auth.tokenFile").catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `${file}:8:18: repos[0].auth.tokenFile: file ${JSON.stringify(path.join(dir, "secrets/missing-token"))}: no such file`,
    );
  });

  it("usernameFile, passwordFile and caFile too; an empty secret says so without its content", async () => {
    const file = path.join(dir, "other.yaml");
    await writeFile(path.join(dir, "user"), "  \n");
    const cfg = parseConfig(
      config("https://git.example.com/r.git", "    caFile: ca-missing.pem", "    auth:", "      usernameFile: user", "      passwordFile: pw-missing"),
      file,
    );
    const r = cfg.repos[0]!;
    expect(((await readSecretFile(r.auth!.usernameFile!, "u").catch((e: unknown) => e)) as Error).message).toMatch(
      new RegExp(`^${file}:9:21: repos\\[0\\]\\.auth\\.usernameFile: file .*: is empty$`),
    );
    expect(((await readSecretFile(r.auth!.passwordFile!, "p").catch((e: unknown) => e)) as Error).message).toMatch(
      new RegExp(`^${file}:10:21: repos\\[0\\]\\.auth\\.passwordFile: file .*: no such file$`),
    );
    expect(((await readConfigFile(r.caFile!, "c").catch((e: unknown) => e)) as Error).message).toMatch(
      new RegExp(`^${file}:7:13: repos\\[0\\]\\.caFile: file .*: no such file$`),
    );
  });

  it("verify.keysFile: unreadable or without a key, named at file:line:col before any commit is read", async () => {
    const file = path.join(dir, "signed.yaml");
    const cfg = parseConfig(config("https://git.example.com/r.git", "    verify:", "      mode: head", "      keysFile: keys/missing.asc"), file);
    const keysFile = cfg.repos[0]!.verify!.keysFile;
    const commits = { readCommitObject: (): Promise<Uint8Array> => Promise.reject(new Error("no commit may be read without keys")) };
    const v = new CommitVerifier(commits, keysFile, "repos[infra].verify.keysFile");
    const err = (await v.check("a".repeat(40)).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      `${file}:9:17: repos[0].verify.keysFile: file ${JSON.stringify(path.join(dir, "keys/missing.asc"))}: no such file`,
    );
    // A file that exists but holds no key: same place, and the next check reads the file again.
    const garbled = path.join(dir, "garbled.yaml");
    const cfg2 = parseConfig(config("https://git.example.com/r.git", "    verify:", "      mode: head", "      keysFile: garbled.asc"), garbled);
    await writeFile(path.join(dir, "garbled.asc"), "not a key\n");
    const v2 = new CommitVerifier(commits, cfg2.repos[0]!.verify!.keysFile, "repos[infra].verify.keysFile");
    expect(((await v2.check("a".repeat(40)).catch((e: unknown) => e)) as Error).message).toMatch(
      new RegExp(`^${garbled}:9:17: repos\\[0\\]\\.verify\\.keysFile: .*garbled\\.asc": no readable OpenPGP public key`),
    );
  });
});
