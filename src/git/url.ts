// Repository URL checks. isomorphic-git speaks only http(s) and does not validate URLs itself,
// so every URL that reaches it goes through validateRepoUrl first.

export class RepoUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RepoUrlError";
  }
}

/**
 * Checks a repository URL and returns it normalized.
 * Accepted: http:// or https:// with a host, no user:password@, no query, no fragment.
 * Normalized: scheme and host lower-cased (WHATWG URL), default port dropped, trailing slashes removed.
 * Throws RepoUrlError; the message never contains embedded credentials.
 */
export function validateRepoUrl(url: string): string {
  if (typeof url !== "string" || url.trim() === "") {
    throw new RepoUrlError("repository URL is empty");
  }
  if (/[\s\u0000-\u001f\u007f]/.test(url)) {
    throw new RepoUrlError(`repository URL ${redactUrl(url)} contains whitespace or control characters`);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RepoUrlError(`repository URL ${redactUrl(url)} is not a valid URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new RepoUrlError(
      `repository URL ${redactUrl(url)} uses ${u.protocol.replace(/:$/, "")}://; only http:// and https:// are supported`,
    );
  }
  if (u.username !== "" || u.password !== "") {
    throw new RepoUrlError(
      `repository URL ${redactUrl(url)} embeds credentials; pass them through the auth settings instead`,
    );
  }
  if (u.hostname === "") {
    throw new RepoUrlError(`repository URL ${redactUrl(url)} has no host`);
  }
  if (u.search !== "" || url.includes("?")) {
    throw new RepoUrlError(`repository URL ${redactUrl(url)} must not have a query string`);
  }
  if (u.hash !== "" || url.includes("#")) {
    throw new RepoUrlError(`repository URL ${redactUrl(url)} must not have a fragment`);
  }
  const path = u.pathname.replace(/\/+$/, "");
  return `${u.protocol}//${u.host}${path}`;
}

/** Query parameters git itself adds (info/refs?service=git-upload-pack); kept readable. */
const SAFE_QUERY_KEYS = new Set(["service"]);

/**
 * A URL safe to print: user:password@ becomes ***@ and query values become *** (except git's own `service`).
 * Never throws; input that does not parse is redacted with a best-effort pattern.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return String(url)
      .replace(/\/\/[^/@\s]*@/g, "//***@")
      .replace(/([?&][^=&#\s]*=)[^&#\s]*/g, "$1***");
  }
  if (u.username !== "" || u.password !== "") {
    u.username = "***";
    u.password = "";
  }
  if (u.search !== "") {
    const parts = u.search
      .slice(1)
      .split("&")
      .map((kv) => {
        const i = kv.indexOf("=");
        if (i < 0) return kv;
        const key = kv.slice(0, i);
        return SAFE_QUERY_KEYS.has(key) ? kv : `${key}=***`;
      });
    u.search = `?${parts.join("&")}`;
  }
  return u.toString();
}
