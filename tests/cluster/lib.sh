# Shared helpers for up.sh and down.sh (sourced, not run).
# shellcheck shell=bash

cache_root=${KUBETRAIN_TESTENV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kubetrain-testenv}

# Where up.sh records the state directory of the environment it started, so that down.sh
# without arguments finds it: one pointer per work tree and process group (a script such as
# tests/run.sh runs up.sh and, from its EXIT trap, down.sh in one process group), and one per
# work tree for the last environment started there (used from a terminal only).
pointer_file() { # repo [process-group]
  local key
  key=$(printf '%s' "$1" | sha256sum | cut -c1-16)
  if [[ -n ${2:-} ]]; then
    printf '%s/envs/%s.pgrp-%s\n' "$cache_root" "$key" "$2"
  else
    printf '%s/envs/%s\n' "$cache_root" "$key"
  fi
}

# The process group of this shell.
process_group() {
  local stat
  stat=$(cat "/proc/$$/stat")
  stat=${stat##*) }
  awk '{print $3}' <<<"$stat"
}

# The start time of a process (field 22 of /proc/PID/stat, after the parenthesised command name),
# recorded next to its pid so that a reused pid is never signalled.
proc_starttime() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # After the name: state(3) ppid(4) ... starttime(22) is the 20th field.
  awk '{print $20}' <<<"$stat"
}

# True while the process recorded in a pidfile ("PID STARTTIME") is the one that is running
# (an exited process that its parent has not reaped yet, a zombie, counts as stopped).
pidfile_alive() {
  local pid start now stat
  read -r pid start <"$1" 2>/dev/null || return 1
  [[ -n $pid ]] || return 1
  now=$(proc_starttime "$pid") || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]] || return 1
  [[ -z $start || $now == "$start" ]]
}

# Signal the process of a pidfile and its process group (each is started as a group leader).
pidfile_signal() {
  local pid
  read -r pid _ <"$1" 2>/dev/null || return 0
  pidfile_alive "$1" || return 0
  kill "-$2" -- "-$pid" 2>/dev/null || kill "-$2" "$pid" 2>/dev/null || true
}
