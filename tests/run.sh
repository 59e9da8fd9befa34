#!/usr/bin/env bash
# The one test command (README "Testing"; .ci/run calls it).
#
# Lints, builds, brings up the real test environment (tests/cluster: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, SeaweedFS S3 and the process node), runs every test
# of the workspace against it, and brings it down again even when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --bins --locked

step "test environment"
trap 'tests/cluster/down.sh' EXIT
envfile=$(tests/cluster/up.sh | tail -n 1)
# shellcheck source=/dev/null
. "$envfile"

step "tests"
cargo test --workspace --locked
