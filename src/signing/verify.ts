// Signed commits: the commit to deploy must carry a valid OpenPGP signature by one of the
// configured public keys. The signed payload is computed from the raw commit object (the commit
// without its gpgsig header), not taken from isomorphic-git, whose payload is wrong for some
// signatures. SSH signatures are refused: they are not supported.
import fs from "node:fs";
import { readFile } from "node:fs/promises";
import git from "isomorphic-git";
import * as openpgp from "openpgp";

export type Verdict = { ok: true; signer: string } | { ok: false; reason: string };

/** The signature and the exact bytes it signs, from a raw commit object; no signature: undefined. */
export function splitSignedCommit(raw: Uint8Array): { signature: string; payload: Uint8Array } | undefined {
  const text = Buffer.from(raw).toString("latin1"); // byte-preserving
  const headerEnd = text.indexOf("\n\n");
  const headers = headerEnd < 0 ? text : text.slice(0, headerEnd + 1);
  const lines = headers.split("\n");
  const kept: string[] = [];
  let sig: string[] | undefined;
  let inSig = false;
  for (const line of lines.slice(0, -1)) {
    if (inSig && line.startsWith(" ")) {
      sig?.push(line.slice(1));
      continue;
    }
    inSig = false;
    if (line.startsWith("gpgsig ") && sig === undefined) {
      sig = [line.slice("gpgsig ".length)];
      inSig = true;
      continue;
    }
    kept.push(line);
  }
  if (!sig) return undefined;
  const payload = kept.join("\n") + "\n" + (headerEnd < 0 ? "" : text.slice(headerEnd + 1));
  return { signature: sig.join("\n") + "\n", payload: Buffer.from(payload, "latin1") };
}

/** Verifies commit `sha` (which must be in `gitdir`) against the keys. Never throws for a bad signature. */
export async function verifyCommitSignature(gitdir: string, sha: string, keys: openpgp.PublicKey[]): Promise<Verdict> {
  const short = sha.slice(0, 12);
  const { object } = await git.readObject({ fs, gitdir, oid: sha, format: "content" });
  const split = splitSignedCommit(object as Uint8Array);
  if (!split) return { ok: false, reason: `commit ${short} is not signed` };
  if (split.signature.startsWith("-----BEGIN SSH SIGNATURE-----")) return { ok: false, reason: `commit ${short} has an SSH signature; only OpenPGP signatures are supported` };
  if (!split.signature.startsWith("-----BEGIN PGP SIGNATURE-----")) return { ok: false, reason: `commit ${short} has a signature of an unsupported kind (only OpenPGP signatures are supported)` };
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature: split.signature });
  } catch (e) {
    return { ok: false, reason: `commit ${short} has an unreadable signature: ${(e as Error).message}` };
  }
  const signers = signature.getSigningKeyIDs().map((k) => k.toHex().toUpperCase());
  try {
    const message = await openpgp.createMessage({ binary: split.payload });
    const { signatures } = await openpgp.verify({ message, signature, verificationKeys: keys, expectSigned: true, format: "binary" });
    for (const s of signatures) {
      await s.verified;
      return { ok: true, signer: s.keyID.toHex().toUpperCase() };
    }
    return { ok: false, reason: `commit ${short} has no signature` };
  } catch (e) {
    const msg = (e as Error).message;
    if (/could not find signing key|no matching key|not find/i.test(msg)) return { ok: false, reason: `commit ${short} is signed by key ${signers.join(", ")}, which is not a trusted key` };
    return { ok: false, reason: `commit ${short} has an invalid signature (key ${signers.join(", ")}): ${msg}` };
  }
}

/** Verifies commits of one repo against the keys of repos[].verify.keysFile; verdicts cached per commit. */
export class CommitVerifier {
  private keys?: Promise<openpgp.PublicKey[]>;
  private readonly verdicts = new Map<string, Verdict>();

  constructor(
    private readonly gitdir: string,
    private readonly keysFile: string,
  ) {}

  private loadKeys(): Promise<openpgp.PublicKey[]> {
    this.keys ??= readFile(this.keysFile, "utf8").then(async (armoredKeys) => {
      const keys = await openpgp.readKeys({ armoredKeys });
      return keys.map((k) => k.toPublic());
    });
    return this.keys;
  }

  /** Why `sha` may not be deployed; undefined when it carries a valid signature by a trusted key. */
  async check(sha: string): Promise<string | undefined> {
    let v = this.verdicts.get(sha);
    if (!v) {
      let keys: openpgp.PublicKey[];
      try {
        keys = await this.loadKeys();
      } catch (e) {
        this.keys = undefined;
        throw new Error(`cannot read the public keys in ${this.keysFile}: ${(e as Error).message}`);
      }
      v = await verifyCommitSignature(this.gitdir, sha, keys);
      this.verdicts.set(sha, v);
    }
    return v.ok ? undefined : `signature verification failed: ${v.reason}; nothing applied`;
  }
}
