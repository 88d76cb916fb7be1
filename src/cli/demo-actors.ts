// The demo's own hands on the clusters: no Tekton controller runs on a local control plane, so the
// demo plays it (a PipelineRun's Succeeded condition, written through the status subresource as
// the controller would), and it plays a user who edits and deletes objects. Each cluster gets a
// client of its own, so none of this shows in plumber's request counts.
import { KubeClient, loadKubeConfig } from "../kube/client.js";
import { sleep } from "../util/pool.js";

const pipelineRunPath = (ns: string, name: string): string => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`;

export interface PipelineRunObject {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { params?: { name: string; value: unknown }[] };
  status?: { conditions?: { type: string; status: string; reason?: string }[] };
}

export class DemoActor {
  private constructor(readonly client: KubeClient) {}

  static async connect(kubeconfig: string): Promise<DemoActor> {
    return new DemoActor(await KubeClient.create(loadKubeConfig({ kubeconfig })));
  }

  async pipelineRun(ns: string, name: string): Promise<PipelineRunObject | undefined> {
    return this.client.getOptional<PipelineRunObject>(pipelineRunPath(ns, name));
  }

  /** What a Tekton controller would write when the run ends. */
  async finishPipelineRun(ns: string, name: string, succeeded: boolean, reason: string, message: string): Promise<void> {
    await this.client.request({
      method: "PATCH",
      path: `${pipelineRunPath(ns, name)}/status`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({
        status: { conditions: [{ type: "Succeeded", status: succeeded ? "True" : "False", reason, message, lastTransitionTime: new Date().toISOString() }] },
      }),
    });
  }

  /** A merge patch as `kubectl edit` would send it, under kubectl's field manager. */
  async edit(path: string, patch: unknown): Promise<void> {
    await this.client.request({
      method: "PATCH",
      path,
      query: { fieldManager: "kubectl-edit" },
      contentType: "application/merge-patch+json",
      body: JSON.stringify(patch),
    });
  }

  async delete(path: string): Promise<void> {
    await this.client.request({ method: "DELETE", path });
  }

  async get<T>(path: string): Promise<T | undefined> {
    return this.client.getOptional<T>(path);
  }

  /** Until `path` exists (an object plumber creates in the round under way), at most `ms`. */
  async waitFor<T>(path: string, ms = 30_000): Promise<T | undefined> {
    const until = Date.now() + ms;
    for (;;) {
      const o = await this.client.getOptional<T>(path);
      if (o || Date.now() > until) return o;
      await sleep(100);
    }
  }

  close(): void {
    this.client.close();
  }
}

export { pipelineRunPath };
