#!/usr/bin/env bash
# CPU cost per request of `vigil datanode` against redis-server, in the same run.
#
#   bench/cpu.sh [REQUESTS]       (default 1,000,000 per command; needs redis-server, redis-benchmark)
#
# Throughput on a shared 2-core machine is noisy; the CPU time a server spends on a fixed number of
# requests is not. For each command this runs redis-benchmark -c 50 -P 16 against both servers and
# prints the server's CPU milliseconds (user + system, from /proc/PID/stat) and the ratio
# vigil/redis: below 1.0 means vigil does the same work with less CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
VPORT=${VPORT:-17011}
RPORT=${RPORT:-17012}
TESTS=(set get incr lpush lpop sadd hset zadd mset)

cargo build --release --quiet
work=$(mktemp -d)
./target/release/vigil datanode --port "$VPORT" --dir "$work" --save "" >/dev/null 2>"$work/vigil.log" &
vpid=$!
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
rpid=$!
cleanup() { kill "$vpid" "$rpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for p in "$VPORT" "$RPORT"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cpu_ms() { # pid port test
  local before after
  before=$(ticks "$1")
  redis-benchmark -p "$2" -t "$3" -c 50 -n "$N" -P 16 -r 100000 -q >/dev/null 2>&1
  after=$(ticks "$1")
  echo $(( (after - before) * 1000 / hz ))
}

printf '%-8s %12s %12s %7s\n' command vigil_cpu_ms redis_cpu_ms ratio
for t in "${TESTS[@]}"; do
  redis-cli -p "$VPORT" flushall >/dev/null; redis-cli -p "$RPORT" flushall >/dev/null
  v=$(cpu_ms "$vpid" "$VPORT" "$t")
  r=$(cpu_ms "$rpid" "$RPORT" "$t")
  printf '%-8s %12s %12s %7.2f\n' "$t" "$v" "$r" "$(awk -v a="$v" -v b="$r" 'BEGIN{print a/b}')"
done
