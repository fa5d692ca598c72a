#!/usr/bin/env bash
# The long fault campaign of RELIABILITY.md: more SIGKILL cycles, a bigger malformed flood, broker
# and registry restarts mid-stream. `make test` runs the short variants of the same tests.
#   scripts/fault-campaign.sh            (starts the local stack if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
export CRASH_CYCLES="${CRASH_CYCLES:-12}" CRASH_EVENTS="${CRASH_EVENTS:-10000}" FLOOD_EVENTS="${FLOOD_EVENTS:-10000}"
scripts/with-stack.sh cargo test --release \
  --test crash_recovery --test malformed_flood --test broker_outage --test registry_outage \
  -- --nocapture --test-threads 1 2>&1 | tee target/fault-campaign.log
