// `npm run sandbox`: a local control plane with the Tekton CRDs, in the foreground, until
// Ctrl-C (SIGINT) or SIGTERM.
import { installCrds, startControlPlane } from "../../src/local/controlplane.js";

const log = (line: string) => process.stderr.write(`[sandbox] ${line}\n`);

async function main(): Promise<void> {
  let stopping = false;
  // Set once the control plane is up; a signal before that finds nothing to stop yet.
  const running: { stop?: () => Promise<void> } = {};
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    void (running.stop ? running.stop() : Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        log(`stop failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  // Installed first, so the control plane's own handlers defer to this orderly stop.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const t0 = Date.now();
  const cp = await startControlPlane({ log });
  running.stop = cp.stop;
  if (stopping) {
    await cp.stop();
    process.exit(0);
  }
  await installCrds(cp.kubeconfigPath, undefined, { binDir: cp.binDir });
  log(`Tekton CRDs installed; ready in ${((Date.now() - t0) / 1000).toFixed(1)}s. Ctrl-C to stop.`);
  process.stdout.write(`export KUBECONFIG=${cp.kubeconfigPath}\n`);
  // Stay alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}

main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
