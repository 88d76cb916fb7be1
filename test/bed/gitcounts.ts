// The shared git server's request counts, read from test workers (the server runs in the
// global setup's process): startGitServer({ statsPath: STATS_PATH }) serves them.

/** No repo is named "-", so this path never collides with a repo's. */
export const STATS_PATH = "/-/requests";

/** Reads a git server's request counts over HTTP; `reset` also zeroes them. */
export async function fetchGitServerCounts(
  baseUrl: string,
  opts: { reset?: boolean } = {},
): Promise<{ total: number; byPath: Record<string, number> }> {
  const r = await fetch(baseUrl + STATS_PATH, { method: opts.reset ? "DELETE" : "GET" });
  if (!r.ok) throw new Error(`git server stats: HTTP ${r.status}`);
  return (await r.json()) as { total: number; byPath: Record<string, number> };
}
