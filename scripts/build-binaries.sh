#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, etcd, kubectl) and kustomize from source
# through the Go module proxy, into a cache keyed by version so later runs start at once.
# Nothing is downloaded from anywhere but the Go module proxy.
#   usage: build-binaries.sh            -> prints the bin dir on stdout
set -euo pipefail

K8S_VERSION="${PLUMBER_K8S_VERSION:-1.35.4}"
ETCD_VERSION="${PLUMBER_ETCD_VERSION:-3.6.5}"
KUSTOMIZE_VERSION="${PLUMBER_KUSTOMIZE_VERSION:-5.8.1}"
CACHE="${PLUMBER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plumber}"
BIN="$CACHE/bin/k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION-kustomize-v$KUSTOMIZE_VERSION"

log() { echo "[build-binaries] $*" >&2; }

if [[ -x "$BIN/kube-apiserver" && -x "$BIN/etcd" && -x "$BIN/kubectl" && -x "$BIN/kustomize" ]]; then
  echo "$BIN"; exit 0
fi

mkdir -p "$BIN"
work="$CACHE/src"
mkdir -p "$work"
# The build is slow (minutes); keep concurrent callers from building twice.
exec 9>"$CACHE/build.lock"
flock 9
if [[ -x "$BIN/kube-apiserver" && -x "$BIN/etcd" && -x "$BIN/kubectl" && -x "$BIN/kustomize" ]]; then
  echo "$BIN"; exit 0
fi

export GOFLAGS="-buildvcs=false -trimpath" CGO_ENABLED=0

# kube-apiserver and kubectl: k8s.io/kubernetes as a dependency, its staging modules
# (replaced by ./staging paths upstream) pinned to their published v0.x versions instead.
if [[ ! -x "$BIN/kube-apiserver" || ! -x "$BIN/kubectl" ]]; then
  kdir="$work/k8s-$K8S_VERSION"
  mkdir -p "$kdir"
  staging_v="v0.${K8S_VERSION#1.}"
  # The go tool fetches through whatever GOPROXY this machine is set up with.
  modfile=$(cd "$kdir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -n "$modfile" && -f "$modfile" ]] || { log "could not download k8s.io/kubernetes v$K8S_VERSION"; exit 1; }
  mod=$(cat "$modfile")
  {
    echo "module plumber.local/testbed"
    echo "go 1.24"
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' <<<"$mod" | awk -v v="$staging_v" '{print "replace " $1 " => " $1 " " v}'
  } >"$kdir/go.mod"
  cat >"$kdir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving k8s.io/kubernetes v$K8S_VERSION (staging $staging_v)"
  (cd "$kdir" && go mod tidy -e >&2 2>&1 | tail -5 >&2 || true)
  log "building kube-apiserver"
  (cd "$kdir" && go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#1.}" -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
  log "building kubectl"
  (cd "$kdir" && go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION" -o "$BIN/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >&2)
  mv "$BIN/kubectl.tmp" "$BIN/kubectl"
fi

# etcd: its server module's etcdmain, behind a two-line main of our own (the root etcd
# module carries replace directives, so `go install` of it is refused).
if [[ ! -x "$BIN/etcd" ]]; then
  edir="$work/etcd-$ETCD_VERSION"
  mkdir -p "$edir"
  cat >"$edir/go.mod" <<GOMOD
module plumber.local/etcd
go 1.24
require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
  cat >"$edir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "building etcd v$ETCD_VERSION"
  (cd "$edir" && go mod tidy >&2 && go build -ldflags "-s -w" -o "$BIN/etcd.tmp" . >&2)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

if [[ ! -x "$BIN/kustomize" ]]; then
  log "building kustomize v$KUSTOMIZE_VERSION"
  GOBIN="$BIN/.kustomize" go install -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION" >&2
  mv "$BIN/.kustomize/kustomize" "$BIN/kustomize"
  rmdir "$BIN/.kustomize"
fi

echo "$BIN"
