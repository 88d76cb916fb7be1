// What kustomize would fetch over the network instead of reading from the repository. Broader
// than kustomize's own tests on purpose: a false positive only refuses an odd local path name,
// a false negative would let a build reach the network.

/**
 * Does a kustomization value name something remote? Covers every form kustomize v5 loads
 * remotely: http(s) files (FileLoader.Load), git repos (https/ssh/file/git:: URLs, `gh:`,
 * scp-like `git@host:org/repo`, bare `github.com/…`, Azure `_git/`, `?ref=`/`?version=` queries)
 * and `oci://` artifacts, plus any other `scheme://`.
 */
export function isRemoteEntry(entry: string): boolean {
  const e = entry.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e)) return true; // http(s)://, ssh://, file://, git://, oci://, s3://…
  if (/^[a-z][a-z0-9+.-]*::/i.test(e)) return true; // go-getter forced protocols: git::https://…
  if (/^gh:/i.test(e)) return true;
  if (/^[^/\s]+@[^/\s]+:/.test(e)) return true; // scp-like git@github.com:org/repo
  if (/^github\.com[:/]/i.test(e)) return true;
  if (/(^|\/)_git\//.test(e)) return true;
  if (/[?&](ref|version|timeout|submodules|cache)=/.test(e)) return true;
  return false;
}

/**
 * Remote parts of a generator `files` entry, which may be `key=path`: kustomize splits at the
 * first "=" and loads the rest, so `creds=https://…` is as remote as `https://…`.
 */
export function isRemoteFileSource(entry: string): boolean {
  if (isRemoteEntry(entry)) return true;
  const eq = entry.indexOf("=");
  return eq >= 0 && isRemoteEntry(entry.slice(eq + 1));
}

/** The path a generator `files` entry reads: the part after `key=` when there is one. */
export function fileSourcePath(entry: string): string {
  const eq = entry.indexOf("=");
  return eq >= 0 ? entry.slice(eq + 1) : entry;
}
