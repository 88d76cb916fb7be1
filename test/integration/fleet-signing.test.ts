// Signed commits (repos[].verify): unsigned and wrongly signed commits are refused, nothing
// applied; a commit signed by a trusted key is applied. Signatures are made with openpgp and the
// signed commit object is written with `git hash-object -w -t commit`, as `git commit -S` would.
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TestRepo } from "../bed/testrepo.js";
import { splitSignedCommit } from "../../src/signing/verify.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

let trusted: { priv: openpgp.PrivateKey; armoredPublic: string };
let stranger: openpgp.PrivateKey;
beforeAll(async () => {
  const a = await openpgp.generateKey({ type: "ecc", curve: "ed25519Legacy", userIDs: [{ name: "release bot", email: "bot@example.com" }], format: "object" });
  trusted = { priv: a.privateKey, armoredPublic: a.publicKey.armor() };
  stranger = (await openpgp.generateKey({ type: "ecc", curve: "ed25519Legacy", userIDs: [{ name: "mallory" }], format: "object" })).privateKey;
});

const gitIn = (repo: TestRepo, args: string[], input?: Buffer): Buffer => execFileSync("git", ["--git-dir", repo.bareDir, ...args], { input, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" } });

/** Replaces the head commit of main with the same commit signed by `key` (or an SSH-looking signature). */
async function signHead(repo: TestRepo, key: openpgp.PrivateKey | "ssh"): Promise<string> {
  const old = (await repo.head("main")).trim();
  const raw = gitIn(repo, ["cat-file", "commit", old]);
  const text = raw.toString("latin1");
  const headerEnd = text.indexOf("\n\n");
  const armored =
    key === "ssh"
      ? "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
      : ((await openpgp.sign({ message: await openpgp.createMessage({ binary: new Uint8Array(raw) }), signingKeys: key, detached: true, format: "armored" })) as string);
  const header = "gpgsig " + armored.replace(/\n$/, "").split("\n").join("\n ");
  const signed = Buffer.from(text.slice(0, headerEnd) + "\n" + header + text.slice(headerEnd), "latin1");
  // the payload plumber computes is exactly the unsigned commit
  expect(Buffer.from(splitSignedCommit(signed)?.payload ?? []).equals(raw)).toBe(true);
  const sha = gitIn(repo, ["hash-object", "-w", "-t", "commit", "--stdin"], signed).toString().trim();
  gitIn(repo, ["update-ref", "refs/heads/main", sha, old]);
  return sha;
}

describe("signed commits", () => {
  it("refuses unsigned, SSH-signed and untrusted-signed commits; applies a commit signed by a trusted key", async () => {
    const h = await harness({ "cm.yaml": configMap("cm", { v: "0" }) });
    open.push(h);
    await writeFile(join(h.dir, "keys.asc"), trusted.armoredPublic);
    await h.reconfigure({ top: { repos: [{ name: "plumbing", url: (h.rt.config.repos[0] as { url: string }).url, interval: "1s", auth: { tokenFile: "token" }, verify: { mode: "head", keysFile: "keys.asc" } }] } });
    const cm = () => getObject(h.kube, `/api/v1/namespaces/${h.namespace}/configmaps/cm`);

    // unsigned
    let res = await h.cycle();
    expect(res).toMatchObject({ kind: "failed", permanent: true, message: expect.stringMatching(/^signature verification failed: commit [0-9a-f]{12} is not signed; nothing applied$/) });
    expect(await cm()).toBeUndefined();
    expect((await h.cycle()).kind).toBe("held");

    // signed by a key that is not trusted
    await h.repo.commit({ "cm.yaml": configMap("cm", { v: "1" }) }, "by mallory");
    await signHead(h.repo, stranger);
    res = await h.cycle();
    expect(res).toMatchObject({ kind: "failed", message: expect.stringContaining("which is not a trusted key") });
    expect(await cm()).toBeUndefined();

    // SSH signatures are not supported
    await h.repo.commit({ "cm.yaml": configMap("cm", { v: "2" }) }, "ssh");
    await signHead(h.repo, "ssh");
    res = await h.cycle();
    expect(res).toMatchObject({ kind: "failed", message: expect.stringContaining("has an SSH signature; only OpenPGP signatures are supported") });
    expect(await cm()).toBeUndefined();

    // signed by the trusted key
    await h.repo.commit({ "cm.yaml": configMap("cm", { v: "3" }) }, "release");
    const good = await signHead(h.repo, trusted.priv);
    res = await h.cycle();
    expect(res).toMatchObject({ kind: "applied", revision: good });
    expect((await cm())?.data).toEqual({ v: "3" });

    // a tampered commit (same signature, other content) is refused
    const raw = gitIn(h.repo, ["cat-file", "commit", good]).toString("latin1");
    const tampered = gitIn(h.repo, ["hash-object", "-w", "-t", "commit", "--stdin"], Buffer.from(raw.replace("release", "releasf"), "latin1")).toString().trim();
    gitIn(h.repo, ["update-ref", "refs/heads/main", tampered, good]);
    res = await h.cycle();
    expect(res).toMatchObject({ kind: "failed", message: expect.stringContaining("invalid signature") });
    expect((await cm())?.data).toEqual({ v: "3" });
  });
});
