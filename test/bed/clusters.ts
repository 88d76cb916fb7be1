// More clusters beside the run's shared one: a control plane of its own per test file that needs
// two (nightly and prod), started in beforeAll and stopped in afterAll — not in the global setup,
// since one costs a few seconds and ~300 MB and most files need none.
import { inject } from "vitest";
import { installCrds, startControlPlane, type ControlPlane } from "../../src/local/controlplane.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";

export interface ExtraCluster {
  /** kubeconfig of the new control plane (system:masters). */
  kubeconfigPath: string;
  kube: KubeClient;
  stop(): Promise<void>;
}

/** Starts another control plane from the run's binaries; `crds`: with the Tekton CRDs (checks, releases). */
export async function startCluster(opts: { crds?: boolean } = {}): Promise<ExtraCluster> {
  const binDir = inject("binDir");
  const cp: ControlPlane = await startControlPlane({ binDir });
  try {
    if (opts.crds) await installCrds(cp.kubeconfigPath, undefined, { binDir });
    const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
    return {
      kubeconfigPath: cp.kubeconfigPath,
      kube,
      async stop() {
        kube.close();
        await cp.stop();
      },
    };
  } catch (e) {
    await cp.stop();
    throw e;
  }
}
