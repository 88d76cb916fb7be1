// Files named by the config (auth.tokenFile, usernameFile, passwordFile, caFile, keysFile). Errors
// name the file, what it is for and — when the config named it — file:line:col of that field;
// never its content.

import { open } from "node:fs/promises";

/** Where in a config file a file-valued field is written. */
export interface ConfigFieldSource {
  file: string;
  line: number;
  column: number;
  /** e.g. repos[0].auth.tokenFile */
  field: string;
}

/** Absolute path → where the last parsed config names it (filled by parseConfig). */
const fieldSources = new Map<string, ConfigFieldSource>();

export function rememberConfigField(absPath: string, at: ConfigFieldSource): void {
  fieldSources.set(absPath, at);
}

/** Where a file named by the config came from (file:line:col: field), or `what` when not known. */
export function configFieldLabel(path: string, what: string): string {
  const at = fieldSources.get(path);
  return at ? `${at.file}:${at.line}:${at.column}: ${at.field}` : what;
}

/** Secret files larger than this are refused. */
export const MAX_SECRET_BYTES = 64 * 1024;

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    case "ELOOP":
      return "too many symbolic links";
    case "ENOTDIR":
      return "a parent of it is not a directory";
    default:
      return code ? `cannot read it (${code})` : "cannot read it";
  }
}

/**
 * Reads a secret file and returns its content with surrounding whitespace (and a BOM) trimmed.
 * `what` says what the secret is for, e.g. `token for repo "infra"`; it and `path` are in every
 * error message, the content never is. Refuses files over 64 KiB, empty files, and secrets with
 * control characters inside (a second line, say), which would corrupt an HTTP header.
 */
export async function readSecretFile(path: string, what: string): Promise<string> {
  const where = `${configFieldLabel(path, what)}: file ${JSON.stringify(path)}`;
  const buf = await readBounded(path, where, MAX_SECRET_BYTES, `${MAX_SECRET_BYTES / 1024} KiB`);
  const text = buf.toString("utf8");
  buf.fill(0);
  const secret = text.trim();
  if (secret === "") throw new Error(`${where}: is empty`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(secret)) {
    throw new Error(`${where}: contains line breaks or other control characters inside the value`);
  }
  return secret;
}

/** Non-secret files the config names (caFile): the same errors, a larger limit, content as is. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

export async function readConfigFile(path: string, what: string): Promise<string> {
  const where = `${configFieldLabel(path, what)}: file ${JSON.stringify(path)}`;
  const buf = await readBounded(path, where, MAX_CONFIG_FILE_BYTES, `${MAX_CONFIG_FILE_BYTES / 1024 / 1024} MiB`);
  if (buf.length === 0) throw new Error(`${where}: is empty`);
  return buf.toString("utf8");
}

/**
 * At most `max` bytes of a file, errors prefixed with `where`. Reads one byte over the limit:
 * a size from stat is no promise (pipes, /dev/*, growing files).
 */
async function readBounded(path: string, where: string, max: number, maxText: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    throw new Error(`${where}: ${reason(err)}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new Error(`${where}: is a directory`);
    const buf = Buffer.alloc(max + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > max) {
      buf.fill(0);
      throw new Error(`${where}: larger than ${maxText}`);
    }
    return buf.subarray(0, length);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(where)) throw err;
    throw new Error(`${where}: ${reason(err)}`, { cause: err });
  } finally {
    await handle.close();
  }
}
