// Branch patterns: an app may follow "the newest release branch" (branchPattern: "release-v*")
// instead of one branch. Resolved from the repo's one ref listing per cycle, no extra request.

/** What an app follows: one branch, or the branch a pattern and a policy pick. */
export interface BranchSpec {
  branch: string;
  branchPattern?: string;
  branchPolicy?: "highestSemver";
}

export interface ResolvedBranch {
  /** The branch followed this cycle; undefined when none matches. */
  branch?: string;
  head?: string;
}

/** A glob over branch names: `*` any run of characters, `?` one character. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (const ch of pattern) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

interface Version {
  nums: [number, number, number];
  pre?: string;
}

/** The first version number in a branch name: v1, 1.2, release-v1.2.3-rc.1 … */
export function versionOf(name: string): Version | undefined {
  const m = /(?:^|[^0-9])v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/.exec(name) ?? /v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?/.exec(name);
  if (!m) return undefined;
  return { nums: [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)], pre: m[4] };
}

export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) {
    const d = (a.nums[i] as number) - (b.nums[i] as number);
    if (d !== 0) return d;
  }
  if (a.pre === b.pre) return 0;
  if (a.pre === undefined) return 1; // a release is newer than its pre-releases
  if (b.pre === undefined) return -1;
  const pa = a.pre.split(".");
  const pb = b.pre.split(".");
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : undefined;
    const ny = /^\d+$/.test(y) ? Number(y) : undefined;
    if (nx !== undefined && ny !== undefined && nx !== ny) return nx - ny;
    if (nx !== undefined && ny === undefined) return -1;
    if (nx === undefined && ny !== undefined) return 1;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The branch an app follows this cycle, from the one listing of the repo's heads. */
export function resolveBranch(spec: BranchSpec, heads: Map<string, string>): ResolvedBranch {
  if (!spec.branchPattern) return { branch: spec.branch, head: heads.get(spec.branch) };
  const re = globToRegExp(spec.branchPattern);
  let best: { name: string; v: Version } | undefined;
  for (const name of heads.keys()) {
    if (!re.test(name)) continue;
    const v = versionOf(name);
    if (!v) continue;
    if (!best || compareVersions(v, best.v) > 0 || (compareVersions(v, best.v) === 0 && name > best.name)) best = { name, v };
  }
  return best ? { branch: best.name, head: heads.get(best.name) } : {};
}
