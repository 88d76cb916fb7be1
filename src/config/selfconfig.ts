// plumber may deploy its own config (the ConfigMap its Deployment mounts) from git. A config it
// could not load would lock it out: the next restart would fail, and so would every reload. So a
// ConfigMap marked `plumber.dev/config: "true"` is validated (its plumber.yaml key, with the
// same parser plumber itself uses) before anything of the revision is applied; an invalid one
// fails the revision for good — nothing is written, the last good revision stays — with an
// error naming the manifest and the problems in the config. The check is here, beside the parser
// it uses; buildRuntime (src/reconcile/runtime.ts) puts it in front of every app's engine.
import { parseConfig } from "./load.js";
import type { FileProblem, Manifest } from "../types.js";
import { FileProblemError, formatProblem } from "../types.js";

export const CONFIG_ANNOTATION = "plumber.dev/config";
export const CONFIG_KEY = "plumber.yaml";

/** Problems with every plumber config ConfigMap among the manifests; empty when all are valid. */
export function checkSelfConfig(manifests: Manifest[]): FileProblem[] {
  const problems: FileProblem[] = [];
  for (const m of manifests) {
    const o = m.object;
    if (o.apiVersion !== "v1" || o.kind !== "ConfigMap" || o.metadata.annotations?.[CONFIG_ANNOTATION] !== "true") continue;
    const what = `ConfigMap ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name} (${CONFIG_ANNOTATION}: "true")`;
    const data = o.data as Record<string, unknown> | undefined;
    const text = data?.[CONFIG_KEY];
    if (typeof text !== "string") {
      problems.push({ file: m.source.file, line: m.source.line, message: `${what} has no ${CONFIG_KEY} key; plumber will not apply it to itself` });
      continue;
    }
    try {
      parseConfig(text, CONFIG_KEY);
    } catch (e) {
      const inner = e instanceof FileProblemError ? e.problems.map(formatProblem) : [e instanceof Error ? e.message : String(e)];
      problems.push({
        file: m.source.file,
        line: m.source.line,
        message: `${what}: ${CONFIG_KEY} is not a valid plumber config; refusing to apply it to plumber itself:\n  ${inner.join("\n  ")}`,
      });
    }
  }
  return problems;
}
