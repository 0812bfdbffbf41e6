#!/usr/bin/env bash
# Failover benchmark (not a test): kill -9 the master under a client writing every 10 ms, with
# Vigil sentinels and, if redis-server is installed, Redis Sentinel side by side.
#   bench/failover.sh [RUNS=5] [DOWN_AFTERS=1000,5000]
# Prints a markdown table of median (min–max) milliseconds after the kill; see bench/failover.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vigil --bin vigil -p vigil-client --example notify_latency >&2
# Cargo puts the binaries under $CARGO_TARGET_DIR when it is set.
target="${CARGO_TARGET_DIR:-$PWD/target}"
VIGIL="$target/release/vigil" NOTIFY="$target/release/examples/notify_latency" \
  exec python3 bench/failover.py "$@"
