/** Values a check manifest may refer to as $(plumber.NAME). */
export interface CheckContext {
  revision: string;
  app: string;
  cluster: string;
}

const PLACEHOLDER = /\$\(plumber\.([A-Za-z]+)\)/g;

/** Substitutes $(plumber.revision|shortRevision|app|cluster) in every string of a manifest. */
export function substitute<T>(value: T, ctx: CheckContext): T {
  const vars: Record<string, string> = {
    revision: ctx.revision,
    shortRevision: ctx.revision.slice(0, 10),
    app: ctx.app,
    cluster: ctx.cluster,
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === "string")
      return v.replace(PLACEHOLDER, (all, name: string) => {
        const out = vars[name];
        if (out === undefined) throw new Error(`unknown placeholder ${all}; known: ${Object.keys(vars).map((k) => `$(plumber.${k})`).join(", ")}`);
        return out;
      });
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}
