#!/usr/bin/env bash
# Throughput and memory of `vigil datanode` against redis-server, in the same run.
#
#   bench/datanode.sh [ROUNDS]        (default 3 rounds; needs redis-server, redis-benchmark)
#
# For each command, runs redis-benchmark at -c 50 unpipelined and with -P 16 against both servers,
# alternating vigil and redis each round, and prints the median requests/s and the ratio
# vigil/redis. Then loads 1,000,000 small keys (key:N -> val:N) into each with redis-cli --pipe
# and prints both RSS figures. Servers listen on loopback only and are stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${N:-200000}
NP=${NP:-1000000}
VPORT=${VPORT:-17001}
RPORT=${RPORT:-17002}
TESTS=(set get incr lpush lpop sadd hset zadd mset)

cargo build --release --quiet
work=$(mktemp -d)
cleanup() {
  redis-cli -p "$VPORT" shutdown nosave >/dev/null 2>&1 || true
  redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start_servers() {
  ./target/release/vigil datanode --port "$VPORT" --dir "$work" >/dev/null 2>"$work/vigil.log" &
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --daemonize yes --logfile "$work/redis.log"
  for p in "$VPORT" "$RPORT"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
}

rps() { # port test pipeline requests
  redis-benchmark -p "$1" -t "$2" -c 50 -n "$4" -P "$3" -r 100000 --csv 2>/dev/null |
    awk -F'"' 'NR==2 {print $4}'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start_servers
printf '%-8s %4s %14s %14s %7s\n' command P vigil_rps redis_rps ratio
for t in "${TESTS[@]}"; do
  for P in 1 16; do
    n=$N; [ "$P" = 16 ] && n=$NP
    : >"$work/v"; : >"$work/r"
    for _ in $(seq "$ROUNDS"); do
      redis-cli -p "$VPORT" flushall >/dev/null; redis-cli -p "$RPORT" flushall >/dev/null
      rps "$VPORT" "$t" "$P" "$n" >>"$work/v"
      rps "$RPORT" "$t" "$P" "$n" >>"$work/r"
    done
    v=$(median <"$work/v"); r=$(median <"$work/r")
    printf "%-8s %4s %14s %14s %7.2f\n" "$t" "$P" "$v" "$r" "$(awk -v a="$v" -v b="$r" "BEGIN{print a/b}")"
  done
done

# Memory: 1,000,000 small keys in each server.
python3 - "$work/load.resp" <<'PY'
import sys
with open(sys.argv[1], "w") as out:
    for i in range(1_000_000):
        k = "key:%d" % i; v = "val:%d" % i
        out.write("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
rss_of() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$1/status"; }
vpid=$(pgrep -f "vigil datanode --port $VPORT" | head -1)
rpid=$(pgrep -f "redis-server 127.0.0.1:$RPORT" | head -1)
for p in "$VPORT" "$RPORT"; do
  redis-cli -p "$p" flushall >/dev/null
  redis-cli -p "$p" --pipe <"$work/load.resp" >/dev/null
done
sleep 1
v=$(rss_of "$vpid"); r=$(rss_of "$rpid")
echo
printf 'RSS with 1M keys: vigil %d MiB, redis %d MiB, ratio %.2f (keys: vigil %s, redis %s)\n' \
  $((v / 1048576)) $((r / 1048576)) "$(awk -v a="$v" -v b="$r" "BEGIN{print a/b}")" \
  "$(redis-cli -p "$VPORT" dbsize)" "$(redis-cli -p "$RPORT" dbsize)"
