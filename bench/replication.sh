#!/usr/bin/env bash
# Replication: full-sync time and replica lag, vigil -> vigil against redis-server -> redis-server,
# in the same run.
#
#   bench/replication.sh            (needs redis-server, redis-cli, redis-benchmark)
#
# 1. Loads KEYS (default 1,000,000) small keys into each master with redis-cli --pipe, then times
#    `REPLICAOF` on an empty replica until its link is up and it holds every key (diskless sync,
#    no delay, on both).
# 2. Runs redis-benchmark (SET/INCR/LPUSH, N requests, 50 clients) against each master while
#    sampling master_repl_offset - replica offset every ~20 ms (replica read first, so an upper bound); prints the mean and max lag in bytes
#    and how long after the load stopped the lag was back to zero.
# Every server listens on loopback only and is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
N=${N:-300000}
VM=${VM:-17101} VR=${VR:-17102} RM=${RM:-17103} RR=${RR:-17104}

cargo build --release --quiet
work=$(mktemp -d)
cleanup() {
  for p in "$VM" "$VR" "$RM" "$RR"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
field() { # port field
  redis-cli -p "$1" info replication | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'
}
wait_ping() { for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.05; done; }

for p in "$VM" "$VR"; do
  mkdir -p "$work/$p"
  ./target/release/vigil datanode --port "$p" --dir "$work/$p" >/dev/null 2>"$work/vigil-$p.log" &
done
for p in "$RM" "$RR"; do
  mkdir -p "$work/$p"
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/$p" \
    --repl-diskless-sync yes --repl-diskless-sync-delay 0 --daemonize yes --logfile "$work/redis-$p.log"
done
for p in "$VM" "$VR" "$RM" "$RR"; do wait_ping "$p"; done

awk -v n="$KEYS" 'BEGIN { for (i = 0; i < n; i++) { k = "key:" i; v = "val:" i;
  printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' >"$work/load.resp"
for p in "$VM" "$RM"; do redis-cli -p "$p" --pipe <"$work/load.resp" >/dev/null; done

full_sync() { # master replica -> ms
  local t0 t1
  t0=$(now_ms)
  redis-cli -p "$2" replicaof 127.0.0.1 "$1" >/dev/null
  while true; do
    if [ "$(field "$2" master_link_status)" = up ] && [ "$(redis-cli -p "$2" dbsize)" -ge "$KEYS" ]; then break; fi
    sleep 0.01
  done
  t1=$(now_ms)
  echo $((t1 - t0))
}

lag() { # master replica name
  redis-benchmark -p "$1" -t set,incr,lpush -n "$N" -c 50 -r 100000 -q >/dev/null 2>&1 &
  local bench=$! samples=0 sum=0 max=0 d ro
  while kill -0 "$bench" 2>/dev/null; do
    # Replica first: the master is read a few ms later, so this is an upper bound of the lag.
    ro=$(field "$2" master_repl_offset)
    d=$(($(field "$1" master_repl_offset) - ro))
    [ "$d" -lt 0 ] && d=0
    samples=$((samples + 1)); sum=$((sum + d)); [ "$d" -gt "$max" ] && max=$d
    sleep 0.02
  done
  local t0 t1
  t0=$(now_ms)
  while [ "$(field "$1" master_repl_offset)" != "$(field "$2" master_repl_offset)" ]; do sleep 0.005; done
  t1=$(now_ms)
  printf '%-22s samples %4d  mean lag %9d B  max lag %9d B  back to zero %5d ms after the load\n' \
    "$3" "$samples" $((sum / (samples > 0 ? samples : 1))) "$max" $((t1 - t0))
}

v=$(full_sync "$VM" "$VR")
r=$(full_sync "$RM" "$RR")
echo "full sync of $KEYS keys:"
printf '  vigil -> vigil   %6d ms\n  redis -> redis   %6d ms\n  ratio vigil/redis %s\n' "$v" "$r" \
  "$(awk -v a="$v" -v b="$r" 'BEGIN { printf "%.2f", a / b }')"
echo "replica lag under redis-benchmark ($N requests x set,incr,lpush, 50 clients):"
lag "$VM" "$VR" "  vigil -> vigil"
lag "$RM" "$RR" "  redis -> redis"
