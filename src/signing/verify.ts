// Signed commits: the commit to deploy must carry a valid OpenPGP signature by one of the
// configured public keys. The signed payload is computed from the raw commit object as git stores
// it (the commit without its gpgsig header), byte for byte: re-serializing a parsed commit gets
// some signatures wrong. SSH signatures are refused: they are not supported.
import type * as openpgp from "openpgp";
import { configFieldLabel, readConfigFile } from "../config/secrets.js";

/** openpgp.js, loaded when a repo verifies signatures: a daemon without one never carries it (~18 MiB). */
const pgp = (): Promise<typeof openpgp> => import("openpgp");

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

/** Where raw commit objects come from: GitRepo (readCommitObject reads them with git cat-file). */
export interface CommitObjectSource {
  readCommitObject(sha: string): Promise<Uint8Array>;
}

/**
 * Verifies commit `sha` (which must be in `repo`'s cache) against the keys. Never throws for a bad
 * signature; throws the GitSourceError of a commit that cannot be read.
 */
export async function verifyCommitSignature(repo: CommitObjectSource, sha: string, keys: openpgp.PublicKey[]): Promise<Verdict> {
  const short = sha.slice(0, 12);
  const split = splitSignedCommit(await repo.readCommitObject(sha));
  if (!split) return { ok: false, reason: `commit ${short} is not signed` };
  if (split.signature.startsWith("-----BEGIN SSH SIGNATURE-----")) return { ok: false, reason: `commit ${short} has an SSH signature; only OpenPGP signatures are supported` };
  if (!split.signature.startsWith("-----BEGIN PGP SIGNATURE-----")) return { ok: false, reason: `commit ${short} has a signature of an unsupported kind (only OpenPGP signatures are supported)` };
  const lib = await pgp();
  let signature: openpgp.Signature;
  try {
    signature = await lib.readSignature({ armoredSignature: split.signature });
  } catch (e) {
    return { ok: false, reason: `commit ${short} has an unreadable signature: ${(e as Error).message}` };
  }
  const signers = signature.getSigningKeyIDs().map((k) => k.toHex().toUpperCase());
  // Untrusted is decided by key ID, before verifying: openpgp.js errors carry no codes to tell it apart.
  const trusted = new Set(keys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex().toUpperCase())));
  if (!signers.some((id) => trusted.has(id))) return { ok: false, reason: `commit ${short} is signed by key ${signers.join(", ")}, which is not a trusted key` };
  try {
    const message = await lib.createMessage({ binary: split.payload });
    const { signatures } = await lib.verify({ message, signature, verificationKeys: keys, expectSigned: true, format: "binary" });
    for (const s of signatures) {
      await s.verified;
      return { ok: true, signer: s.keyID.toHex().toUpperCase() };
    }
    return { ok: false, reason: `commit ${short} has no signature` };
  } catch (e) {
    const msg = (e as Error).message;
    return { ok: false, reason: `commit ${short} has an invalid signature (key ${signers.join(", ")}): ${msg}` };
  }
}

/** Verifies commits of one repo against the keys of repos[].verify.keysFile; verdicts cached per commit. */
export class CommitVerifier {
  private keys?: Promise<openpgp.PublicKey[]>;
  private readonly verdicts = new Map<string, Verdict>();

  /** `what` names the field in errors, e.g. `repos[infra].verify.keysFile`. */
  constructor(
    private readonly repo: CommitObjectSource,
    private readonly keysFile: string,
    private readonly what = "verify.keysFile",
  ) {}

  private loadKeys(): Promise<openpgp.PublicKey[]> {
    // readConfigFile's errors already name config file:line:col, the field and the file.
    this.keys ??= readConfigFile(this.keysFile, this.what).then(async (armoredKeys) => {
      try {
        return (await (await pgp()).readKeys({ armoredKeys })).map((k) => k.toPublic());
      } catch (e) {
        throw new Error(`${configFieldLabel(this.keysFile, this.what)}: file ${JSON.stringify(this.keysFile)}: no readable OpenPGP public key (${(e as Error).message})`, { cause: e });
      }
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
        throw e;
      }
      v = await verifyCommitSignature(this.repo, sha, keys);
      this.verdicts.set(sha, v);
    }
    return v.ok ? undefined : `signature verification failed: ${v.reason}; nothing applied`;
  }
}
