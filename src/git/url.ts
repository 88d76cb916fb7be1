// Repository URL checks: every URL that reaches git goes through validateRepoUrl first, and
// config validation uses the same repoUrlProblem.

export class RepoUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RepoUrlError";
  }
}

/**
 * Why a repository URL cannot be used, or undefined when it can. The one URL check of plumber:
 * config validation (with file:line:col of the url field) and GitRepo both use it. The message
 * never repeats the URL, which could hold credentials.
 * Accepted: http:// or https:// with a host; no user:password@, no query, no fragment, no
 * whitespace or control characters.
 */
export function repoUrlProblem(url: string): string | undefined {
  if (typeof url !== "string" || url.trim() === "") return "is empty";
  if (/^[\w.-]+@[\w.-]+:/.test(url) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    return "scp-style ssh addresses (user@host:path) are not supported; use an https:// URL";
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "must be an https:// or http:// URL";
  }
  // WHATWG URL strips or encodes these silently; git would not see the same URL.
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(url)) return "contains whitespace or control characters";
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    return `${u.protocol.slice(0, -1)}:// URLs are not supported; use an https:// or http:// URL`;
  }
  if (u.hostname === "") return "must name a host";
  if (u.username !== "" || u.password !== "" || /^[a-z]+:\/\/[^/]*@/i.test(url)) {
    return "must not contain credentials; use auth.tokenFile, or auth.usernameFile and auth.passwordFile";
  }
  if (u.search !== "" || url.includes("?")) {
    if (/[?&]ref=/.test(url)) {
      return "must not have a query string: ?ref= is kustomize's remote-target syntax; name the branch in the app's branch field";
    }
    return "must not have a query string (git would send it to the server with every request)";
  }
  if (u.hash !== "" || url.includes("#")) return "must not contain a #fragment; name the branch in the app's branch field";
  return undefined;
}

/**
 * Checks a repository URL (repoUrlProblem) and returns it normalized: scheme and host lower-cased
 * (WHATWG URL), default port dropped, trailing slashes removed. Throws RepoUrlError; the message
 * never contains embedded credentials.
 */
export function validateRepoUrl(url: string): string {
  const problem = repoUrlProblem(url);
  if (problem) throw new RepoUrlError(`repository URL ${redactUrl(String(url))} ${problem}`);
  const u = new URL(url);
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
