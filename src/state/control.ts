import type { KubeClient } from "../kube/client.js";

/**
 * Requests people make of a running plumber — approve, roll back and pin, resume, retry — kept
 * in the target cluster (a ConfigMap per app beside its state), so they survive restarts and
 * reach whichever replica leads. The CLI and the dashboard write it (src/actions/control.ts); the
 * reconciler reads it each cycle.
 */
export interface AppControl {
  approvedRevision?: string;
  /** Deploy this revision instead of the branch head, and stay there until resumed. */
  pinRevision?: string;
  /** A retry request: a token that differs from the one the reconciler last consumed. */
  retryAt?: string;
  /** Who asked (the TokenReview username of a dashboard action): kept beside each request and carried into the history record it leads to. */
  approvedBy?: string;
  pinnedBy?: string;
  retryBy?: string;
}

const KEYS = ["approvedRevision", "pinRevision", "retryAt", "approvedBy", "pinnedBy", "retryBy"] as const;
const FIELD_MANAGER = "plumber-cli";

export function controlObjectName(app: string): string {
  return `plumber-control-${app}`;
}

export class ControlStore {
  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  private path(app: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps/${controlObjectName(app)}`;
  }

  async load(app: string): Promise<AppControl> {
    const cm = await this.client.getOptional<{ data?: Record<string, string> }>(this.path(app));
    const out: AppControl = {};
    for (const k of KEYS) {
      const v = cm?.data?.[k];
      if (v) out[k] = v;
    }
    return out;
  }

  /** Sets (string) or clears (null) keys; other keys are kept. */
  async update(app: string, changes: Partial<Record<keyof AppControl, string | null>>): Promise<void> {
    const current = await this.load(app);
    const data: Record<string, string> = {};
    for (const k of KEYS) {
      const v = k in changes ? changes[k] : current[k];
      if (v) data[k] = v;
    }
    await this.client.request({
      method: "PATCH",
      path: this.path(app),
      query: { fieldManager: FIELD_MANAGER, force: "true" },
      contentType: "application/apply-patch+yaml",
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: controlObjectName(app),
          namespace: this.namespace,
          labels: { "app.kubernetes.io/managed-by": "plumber", "plumber.dev/state": "control" },
        },
        data,
      }),
    });
  }
}
