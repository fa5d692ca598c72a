#!/usr/bin/env bash
# Runs a command with the local Kafka + registry stack up; stops the stack afterwards only if
# this script started it (so a developer's running stack is left alone).
#   scripts/with-stack.sh CMD [ARGS...]
# SYNCLINE_KEEP_STACK=1 leaves a stack this script started running.
# SYNCLINE_FRESH_STACK=1 wipes the broker's data before starting it (tests create their own
# topics every run; a data directory grown over many runs makes broker restarts slow).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=0
if ! "$here/stack.sh" status >/dev/null 2>&1; then
  if [[ "${SYNCLINE_FRESH_STACK:-0}" == 1 ]]; then
    "$here/stack.sh" reset >/dev/null || exit 1
  fi
  "$here/stack.sh" start || exit 1
  started=1
fi
"$@"
rc=$?
if [[ $started == 1 && "${SYNCLINE_KEEP_STACK:-0}" != 1 ]]; then
  "$here/stack.sh" stop
fi
exit $rc
