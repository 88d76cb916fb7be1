// A commit's subject, author and time from its raw object (GitRepo.readCommitObject), for the
// fleet's revision column. Pure.

export interface CommitInfo {
  subject: string;
  author: string;
  /** ISO 8601 (UTC) of the committer time. */
  committedAt: string;
}

/** Parses "tree …\nauthor Name <mail> 1700000000 +0100\ncommitter …\n\nsubject\n…"; undefined when it is not a commit. */
export function parseCommit(raw: Buffer | string): CommitInfo | undefined {
  const text = typeof raw === "string" ? raw : raw.toString("utf8");
  const end = text.indexOf("\n\n");
  if (end < 0) return undefined;
  const headers = text.slice(0, end).split("\n");
  const person = (key: string): { name: string; at?: string } | undefined => {
    const line = headers.find((l) => l.startsWith(`${key} `));
    const m = line && /^\S+ (.*?) <[^>]*> (\d+) [+-]\d{4}$/.exec(line);
    if (!m) return undefined;
    return { name: m[1] ?? "", at: new Date(Number(m[2]) * 1000).toISOString() };
  };
  const author = person("author");
  const committer = person("committer") ?? author;
  if (!author || !committer?.at) return undefined;
  // A signed commit's gpgsig header continues on lines starting with a space; the message follows the first blank line.
  const subject = (text.slice(end + 2).split("\n")[0] ?? "").trim();
  return { subject, author: author.name, committedAt: committer.at };
}
