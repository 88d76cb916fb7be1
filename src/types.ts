// Shared shapes that cross module boundaries. Each module owns its own internals.

/** A Kubernetes object as plumber sends it: the manifest, unchanged but for plumber's marks. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Where a manifest came from, for error messages: a path relative to the repo root. */
export interface SourceRef {
  file: string;
  line: number;
}

export interface Manifest {
  object: KubeObject;
  source: SourceRef;
}

/** An error that points into a file: config or manifests. Printed as file:line:column: message. */
export interface FileProblem {
  file: string;
  line: number;
  column?: number;
  field?: string;
  message: string;
}

export class FileProblemError extends Error {
  constructor(
    readonly problems: FileProblem[],
    summary?: string,
  ) {
    super(summary ?? problems.map(formatProblem).join("\n"));
    this.name = "FileProblemError";
  }
}

export function formatProblem(p: FileProblem): string {
  const where = p.column !== undefined ? `${p.file}:${p.line}:${p.column}` : `${p.file}:${p.line}`;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}
