// Layering of src/ (npm run lint:deps). A module may import its own layer and the layers below it,
// never one above: the list below is the architecture, the rules are generated from it.
// Type-only imports count (tsPreCompilationDeps): a type pulled from above is a dependency too.

/** Bottom first. Each entry: the layer's name and the src/ paths (regexes) that form it. */
const LAYERS = [
  { name: "base", paths: ["^src/util/", "^src/log\\.ts$", "^src/types\\.ts$"] },
  // Reading and talking: manifests, the apiserver, git, the config file, the local control plane.
  { name: "io", paths: ["^src/manifests/", "^src/kube/", "^src/git/", "^src/config/", "^src/local/"] },
  // What plumber knows how to do with them, each alone: apply, health, render, check, verify,
  // record state, gate by window and dependency, pick a branch.
  {
    name: "domain",
    paths: ["^src/engine/", "^src/health/", "^src/kustomize/", "^src/checks/", "^src/signing/", "^src/state/", "^src/windows/", "^src/deps/", "^src/branches/", "^src/promote/"],
  },
  // The one event vocabulary, and the connections (cluster, repo) that apps and releases share.
  { name: "shared", paths: ["^src/observe/", "^src/connect/"] },
  // What acts on the connections and what is told about it.
  { name: "actors", paths: ["^src/reconcile/(?!runtime\\.ts$)", "^src/releases/", "^src/notify/"] },
  // The assembly: config → connections → reconcilers, schedulers, notifier (buildRuntime). Its own
  // layer though it sits in reconcile/: bench/bench.ts and the integration tests import it there.
  { name: "runtime", paths: ["^src/reconcile/runtime\\.ts$"] },
  // What a person asks of plumber (approve, roll back, resume, retry, release now; a plan's diff):
  // one code path for the CLI and the dashboard.
  { name: "actions", paths: ["^src/actions/"] },
  // The long-running service: leader election, metrics, Kubernetes Events, reload, probes.
  { name: "service", paths: ["^src/service/"] },
  // The dashboard: view models, pages, its HTTP server, sign-in and authorised actions.
  { name: "dashboard", paths: ["^src/dashboard/"] },
  { name: "cli", paths: ["^src/cli/"] },
];

/** The engine is a library: it may use only these (and itself). */
const ENGINE_MAY_USE = ["^src/engine/", "^src/kube/", "^src/manifests/", "^src/health/", "^src/util/", "^src/log\\.ts$", "^src/types\\.ts$"];

/** Where the program starts: every other module of src/ must be reachable from here. */
const ENTRY_POINTS = ["^src/cli/main\\.ts$"];

const any = (paths) => paths.join("|");
const ALL_LAYERS = any(LAYERS.flatMap((l) => l.paths));

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.name}`,
  severity: "error",
  comment: `${layer.name} may import only ${LAYERS.slice(0, i + 1).map((l) => l.name).join(", ")} (see LAYERS in .dependency-cruiser.cjs)`,
  from: { path: any(layer.paths) },
  to: { path: any(LAYERS.slice(i + 1).flatMap((l) => l.paths)) },
}));

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import circle: no module of it can be understood, tested or moved alone.",
      from: {},
      to: { circular: true },
    },
    {
      name: "src-not-to-tests",
      severity: "error",
      comment: "src/ ships in the package and the image; test/ and bench/ do not.",
      from: { path: "^src/" },
      to: { path: "^(test|bench)/" },
    },
    {
      name: "local-only-for-the-demo",
      severity: "error",
      comment: "src/local starts a local control plane and git server for `plumber demo`; nothing else in the product may start one.",
      from: { path: "^src/", pathNot: "^src/(cli|local)/" },
      to: { path: "^src/local/" },
    },
    {
      name: "unlayered",
      severity: "error",
      comment: "Every module of src/ belongs to a layer: add its folder to LAYERS in .dependency-cruiser.cjs.",
      from: { path: "^src/", pathNot: ALL_LAYERS },
      to: {},
    },
    {
      name: "to-unlayered",
      severity: "error",
      comment: "Every module of src/ belongs to a layer: add its folder to LAYERS in .dependency-cruiser.cjs.",
      from: {},
      to: { path: "^src/", pathNot: ALL_LAYERS },
    },
    ...upward,
    {
      name: "engine-is-a-library",
      severity: "error",
      comment: "The engine uses only kube, manifests, health and util: no config, git, state or reconcile.",
      from: { path: "^src/engine/" },
      to: { path: "^src/", pathNot: any(ENGINE_MAY_USE) },
    },
    {
      name: "heavy-libraries-lazily",
      severity: "error",
      comment:
        "@kubernetes/client-node (~70 MiB RSS of generated API code) and openpgp (~18 MiB) are loaded with import() when needed (a kubeconfig user with an exec plugin or auth provider, a repo that verifies signatures): a static import makes every `plumber run` carry them.",
      from: { path: "^src/" },
      to: { path: "node_modules/(@kubernetes/client-node|openpgp)/", dependencyTypesNot: ["dynamic-import", "type-only"] },
    },
    {
      name: "no-orphans",
      severity: "error",
      comment: "A module nothing imports and that imports nothing: dead code.",
      from: { orphan: true, path: "^src/" },
      to: {},
    },
    {
      name: "reachable-from-main",
      severity: "error",
      comment: "A module of src/ that the program never loads (only tests or bench do): dead code, or test code in src/.",
      from: { path: any(ENTRY_POINTS) },
      to: { path: "^src/", reachable: false },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"], extensions: [".ts", ".js"] },
    exclude: { path: "^dist/" },
  },
};
