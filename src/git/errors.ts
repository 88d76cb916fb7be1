// The one error type of the git layer, and the mapping of transport failures onto it.
import { GitHttpError } from "./http.js";

export type GitErrorCode =
  /** The server refused the credentials (HTTP 401/403). */
  | "auth"
  /** The repository or branch does not exist (HTTP 404, unknown branch). */
  | "not-found"
  /** Timeout, connection failure, HTTP 5xx/429: try again later. */
  | "network"
  /** The branch moved between listing and fetching; list again and retry. */
  | "moved"
  /** The server is not a usable git smart-HTTP server, or sent something malformed. */
  | "protocol"
  /** A bad argument: branch name, commit id, directory path. */
  | "invalid-argument"
  /** The commit is not in the local cache (call ensureCommit first). */
  | "missing-commit"
  /** The directory does not exist in the commit, or is not a directory. */
  | "missing-path"
  /** A symlink or submodule in the tree being read. */
  | "unsupported-entry"
  /** A file, the tree, the ref listing or a fetch is over a size/count limit, or a file is not UTF-8. */
  | "limit"
  /** The local cache was unreadable or a read timed out: it was thrown away; the next fetch rebuilds it. */
  | "cache";

export class GitSourceError extends Error {
  constructor(
    message: string,
    readonly code: GitErrorCode,
    /** True when the same call may succeed later without any change on our side. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GitSourceError";
  }
}

/** An HTTP status from the server as a GitSourceError. */
export function statusError(what: string, status: number, statusMessage?: string): GitSourceError {
  const line = `HTTP ${status}${statusMessage ? ` ${statusMessage}` : ""}`;
  if (status === 401 || status === 403) {
    return new GitSourceError(`${what}: authentication failed (${line}); check the repository credentials`, "auth", false);
  }
  if (status === 404) return new GitSourceError(`${what}: repository not found (${line})`, "not-found", false);
  const retryable = status >= 500 || status === 429 || status === 408;
  return new GitSourceError(`${what}: server answered ${line}`, retryable ? "network" : "protocol", retryable);
}

/** A transport failure of the HTTP client as a GitSourceError. */
export function transportError(what: string, err: unknown): GitSourceError {
  if (err instanceof GitSourceError) return err;
  if (err instanceof GitHttpError) {
    if (err.code === "too-large") return new GitSourceError(`${what}: ${err.message}`, "limit", false, { cause: err });
    const retryable = err.code === "timeout" || err.code === "network" || err.code === "aborted";
    return new GitSourceError(`${what}: ${err.message}`, retryable ? "network" : "protocol", retryable, { cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new GitSourceError(`${what}: ${msg}`, "network", true, { cause: err });
}
