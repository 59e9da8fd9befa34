#!/usr/bin/env bash
# Builds the test environment's Go binaries from the Go module proxy, once per set of versions:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (go/kubernetes) and helm
# (go/helm), pinned in versions.env. Prints the directory holding them as its last line.
#
#   tests/cluster/build.sh                    build what is missing, print the bin directory
#   tests/cluster/build.sh --update-modules   rewrite go/*/go.mod and go.sum from versions.env
#
# Output goes to $KUBETRAIN_TESTENV_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/kubetrain-testenv),
# keyed by the versions, the Go toolchain and the module checksums, so a second run costs nothing.
# One build at a time (a lock), under `nice`: the first build takes several minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/versions.env
. "$here/versions.env"

log() { printf '[build] %s\n' "$*" >&2; }
die() { printf '[build] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not installed; install a Go >= 1.26 toolchain (Debian: golang-go) and retry"

# Go 1.27 turns on the jsonv2 experiment, with which kube-apiserver v1.36 serves broken /openapi
# documents (kubectl apply fails with "failed to download openapi"). Keep it off.
export GOEXPERIMENT=nojsonv2
export GOFLAGS="-trimpath -buildvcs=false"
export CGO_ENABLED=0
# Build with the installed Go; never fetch another toolchain.
export GOTOOLCHAIN=local

k8s_mod=$here/go/kubernetes
helm_mod=$here/go/helm

update_modules() {
  local k8s_dir
  log "resolving k8s.io/kubernetes@$KUBERNETES_VERSION"
  k8s_dir=$(cd "$k8s_mod" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    printf 'module kubetrain.dev/testenv/kubernetes\n\ngo 1.26.0\n\ntool (\n'
    printf '\t%s\n' k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3
    printf ')\n\nrequire (\n\tk8s.io/kubernetes %s\n\tgo.etcd.io/etcd/server/v3 %s\n)\n\n' "$KUBERNETES_VERSION" "$ETCD_VERSION"
    printf '// k8s.io/kubernetes replaces its staging modules with local paths; pin them to the release.\nreplace (\n'
    grep -E '=> \./staging' "$k8s_dir" | awk -v v="$KUBERNETES_STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } >"$k8s_mod/go.mod"
  printf 'module kubetrain.dev/testenv/helm\n\ngo 1.26.0\n\ntool helm.sh/helm/v4/cmd/helm\n\nrequire helm.sh/helm/v4 %s\n' \
    "$HELM_VERSION" >"$helm_mod/go.mod"
  rm -f "$k8s_mod/go.sum" "$helm_mod/go.sum"
  (cd "$k8s_mod" && nice go mod tidy)
  (cd "$helm_mod" && nice go mod tidy)
  log "modules updated; commit tests/cluster/go"
}

if [[ ${1:-} == --update-modules ]]; then
  update_modules
  exit 0
fi

# The modules must pin what versions.env says.
module_version() { (cd "$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2"); }
check_pin() {
  local got
  got=$(module_version "$1" "$2") || die "cannot resolve $2 in $1"
  [[ $got == "$3" ]] || die "$1 pins $2 $got but versions.env says $3; run: tests/cluster/build.sh --update-modules"
}
check_pin "$k8s_mod" k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin "$k8s_mod" k8s.io/api "$KUBERNETES_STAGING_VERSION"
check_pin "$k8s_mod" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin "$helm_mod" helm.sh/helm/v4 "$HELM_VERSION"

cache_root=${KUBETRAIN_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetrain-testenv}
go_version=$(go env GOVERSION)
sums=$(cat "$k8s_mod/go.mod" "$k8s_mod/go.sum" "$helm_mod/go.mod" "$helm_mod/go.sum" | sha256sum | cut -c1-12)
bin=$cache_root/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-$go_version-$sums
mkdir -p "$bin"

# One build at a time, also across concurrent callers.
exec 9>"$bin/.lock"
flock 9

minor=${KUBERNETES_VERSION#v1.}
minor=${minor%%.*}
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # name module package ldflags
  local name=$1 mod=$2 pkg=$3 ldflags=$4 start
  if [[ -x $bin/$name ]]; then
    return
  fi
  log "building $name ($pkg)"
  start=$SECONDS
  (cd "$mod" && nice go build -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg") ||
    die "building $name failed (see the go output above)"
  mv "$bin/.$name.tmp" "$bin/$name"
  log "built $name in $((SECONDS - start))s"
}

total=$SECONDS
build etcd "$k8s_mod" go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver "$k8s_mod" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager "$k8s_mod" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kube-scheduler "$k8s_mod" k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build kubectl "$k8s_mod" k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build helm "$helm_mod" helm.sh/helm/v4/cmd/helm \
  "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
if ((SECONDS - total > 1)); then
  log "binaries ready in $((SECONDS - total))s"
fi
printf '%s\n' "$bin"
