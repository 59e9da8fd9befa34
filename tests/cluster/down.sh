#!/usr/bin/env bash
# Stops a test environment started by up.sh and removes its state.
#
#   tests/cluster/down.sh [STATE_DIR]
#
# Without an argument it stops $KUBETRAIN_TESTENV, else the environment that up.sh started from
# the same process group (e.g. earlier in the same script), else, from a terminal only, the one
# up.sh last started for this work tree. Only the processes recorded in the environment's pidfiles are signalled: SIGTERM
# to each process group, then SIGKILL after a deadline. Succeeds quietly when nothing is running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/cluster/lib.sh
. "$here/lib.sh"

pointer=$(pointer_file "$repo")
group_pointer=$(pointer_file "$repo" "$(process_group)")
state=${1:-${KUBETRAIN_TESTENV:-}}
if [[ -z $state && -f $group_pointer ]]; then
  state=$(cat "$group_pointer")
fi
# Scripts (EXIT traps) must not stop an environment someone else started in this work tree.
if [[ -z $state && -t 0 && -f $pointer ]]; then
  state=$(cat "$pointer")
fi
if [[ -z $state || ! -f $state/.kubetrain-testenv ]]; then
  exit 0
fi

grace=${KUBETRAIN_TESTENV_STOP_GRACE:-10}

# Stop in dependency order: the node first (it stops its pods), the S3 server and etcd last.
# Pod processes recorded by the node are stopped after it, in case it could not.
stop_all() {
  local pidfile deadline remaining
  for pidfile in "$@"; do
    [[ -f $pidfile ]] && pidfile_signal "$pidfile" TERM
  done
  deadline=$((SECONDS + grace))
  while ((SECONDS < deadline)); do
    remaining=0
    for pidfile in "$@"; do
      if [[ -f $pidfile ]] && pidfile_alive "$pidfile"; then
        remaining=1
      fi
    done
    ((remaining)) || return 0
    sleep 0.1
  done
  for pidfile in "$@"; do
    if [[ -f $pidfile ]] && pidfile_alive "$pidfile"; then
      printf '[down] %s did not stop within %ss; killing it\n' "$(basename "$pidfile" .pid)" "$grace" >&2
      pidfile_signal "$pidfile" KILL
    fi
  done
}

pids=$state/pids
stop_all "$pids/node.pid"
mapfile -t pod_pids < <(find "$state/node" -name '*.pid' 2>/dev/null)
if ((${#pod_pids[@]})); then
  stop_all "${pod_pids[@]}"
fi
stop_all "$pids/kube-scheduler.pid" "$pids/kube-controller-manager.pid"
stop_all "$pids/kube-apiserver.pid" "$pids/weed.pid"
stop_all "$pids/etcd.pid"

rm -rf "$state"
for file in "$pointer" "$(dirname "$pointer")/$(basename "$pointer").pgrp-"*; do
  if [[ -f $file && $(cat "$file") == "$state" ]]; then
    rm -f "$file"
  fi
done
