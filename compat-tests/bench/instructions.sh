#!/usr/bin/env bash
# Deterministic per-request costs of rhaproxy and HAProxy 2.6 side by side, counted by valgrind's
# callgrind in user space: instructions, simulated D1/I1 cache misses and branch mispredictions.
# Unlike CPU times these do not depend on the machine's load, so changes of a few % show.
#
# Usage: compat-tests/bench/instructions.sh [--requests N]
#   --requests  requests of the difference (default 4000): each proxy and scenario runs twice,
#               with N/2 and N/2+N requests, and the per-request figure is the difference of
#               the two runs' totals divided by N (start-up and shutdown cancel out)
# Scenarios: `close` (one request per connection, `Connection: close`) and `keepalive` (8
# persistent connections); 8 concurrent clients, 200 warm-up requests before each run. Needs
# valgrind, nginx, haproxy and rustc (exit 2 when one is missing). Kills only the processes it
# started (by PID), on exit too.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=compat-tests/bench/common.sh
. compat-tests/bench/common.sh
ROOT=$PWD
REQUESTS=4000
CONC=8
WARMUP=200
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) REQUESTS=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$REQUESTS" =~ ^[0-9]+$ ]] && [ "$REQUESTS" -ge 2 ] || { echo "--requests needs a number >= 2" >&2; exit 2; }
for t in valgrind nginx haproxy rustc ss; do
  command -v "$t" >/dev/null || { echo "SKIPPED: missing $t (apt-get install valgrind nginx-light haproxy)" >&2; exit 2; }
done
LOW=$((REQUESTS / 2))
HIGH=$((LOW + REQUESTS))

bench_setup ibench
forget() { # forget PID: drop a reaped PID from PIDS (never signal a reused PID)
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
die() { echo "instructions.sh: $*" >&2; exit 1; }

cargo build --release -q
rustc -O --edition 2021 -o "$tmp/bt" compat-tests/bench/benchtool.rs
declare -A EXE=([rh]=$ROOT/target/release/rhaproxy [ha]=$(command -v haproxy))
declare -A NAME=([rh]=rhaproxy [ha]=HAProxy)
# A fresh port for nginx and for every proxy run (2 proxies x 2 scenarios x 2 sizes).
mapfile -t P < <("$tmp/bt" ports 9)
NGX=${P[0]}
NEXT_PORT=1

small_nginx_conf "$tmp/nginx" "$NGX"
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.err" 2>&1 &
PIDS+=("$!")
"$tmp/bt" wait "127.0.0.1:$NGX" 5000 || die "nginx did not start: $(cat "$tmp/nginx.err")"

# listeners_ok PORT PID: every listener on PORT belongs to PID, and there is one.
listeners_ok() {
  local lines
  lines=$(ss -Hltnp "sport = :$1")
  [ -n "$lines" ] && ! grep -qv "pid=$2," <<<"$lines"
}

# measure IMPL SCENARIO N: runs the proxy under callgrind for N requests (after the warm-up)
# and sets TOTALS to its `summary:` totals, in the order of EVENTS. Not run in a subshell, so
# that PIDS keeps the proxy's PID for the EXIT trap.
EVENTS="Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim"
measure() {
  local i=$1 sc=$2 n=$3 port=${P[$NEXT_PORT]} mode=close out ok
  NEXT_PORT=$((NEXT_PORT + 1))
  [ "$sc" = keepalive ] && mode=ka
  [ -z "$(ss -Hltn "sport = :$port")" ] || die "port $port already has a listener"
  small_http_cfg "$tmp/$i.$sc.$n.cfg" "$port" "$NGX"
  out=$tmp/callgrind.$i.$sc.$n
  valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes --callgrind-out-file="$out" \
    "${EXE[$i]}" -db -f "$tmp/$i.$sc.$n.cfg" >"$tmp/proxy.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  "$tmp/bt" wait "127.0.0.1:$port" 60000 || die "${NAME[$i]} did not listen on $port: $(tail -5 "$tmp/proxy.log")"
  listeners_ok "$port" "$pid" || die "another process listens on port $port: $(ss -Hltnp "sport = :$port")"
  ok=$("$tmp/bt" load "127.0.0.1:$port" "$WARMUP" "$CONC" "$mode") || die "${NAME[$i]} $sc: warm-up failed ($ok of $WARMUP)"
  ok=$("$tmp/bt" load "127.0.0.1:$port" "$n" "$CONC" "$mode") || die "${NAME[$i]} $sc: only $ok of $n requests got a 200"
  [ "$ok" = "$n" ] || die "${NAME[$i]} $sc: $ok of $n requests got a 200"
  listeners_ok "$port" "$pid" || die "another process listens on port $port: $(ss -Hltnp "sport = :$port")"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
  [ "$(awk '/^events:/ { $1 = ""; print substr($0, 2) }' "$out")" = "$EVENTS" ] ||
    die "unexpected events in $out: $(grep '^events:' "$out")"
  TOTALS=$(awk '/^summary:/ { $1 = ""; print substr($0, 2) }' "$out")
  [ -n "$TOTALS" ] || die "no summary in $out"
}

declare -A LOWT HIGHT
for sc in close keepalive; do
  for i in rh ha; do
    echo "callgrind: ${NAME[$i]}, $sc, $LOW and $HIGH requests..." >&2
    measure "$i" "$sc" "$LOW"
    LOWT[$sc.$i]=$TOTALS
    measure "$i" "$sc" "$HIGH"
    HIGHT[$sc.$i]=$TOTALS
  done
done

# per_request SCENARIO IMPL EVENT: (total(HIGH) - total(LOW)) / REQUESTS
per_request() {
  awk -v ev="$3" -v names="$EVENTS" -v lo="${LOWT[$1.$2]}" -v hi="${HIGHT[$1.$2]}" -v n="$REQUESTS" 'BEGIN {
    split(names, e, " "); split(lo, l, " "); split(hi, h, " ")
    for (k in e) if (e[k] == ev) printf "%.1f", (h[k] - l[k]) / n
  }'
}
fmt() { # thousands separators, 0 decimals when >= 1000, 1 otherwise
  awk -v x="$1" 'BEGIN {
    if (x >= 1000 || x <= -1000) {
      s = sprintf("%.0f", x); neg = (s ~ /^-/); if (neg) s = substr(s, 2); o = ""
      while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
      printf "%s%s%s", (neg ? "-" : ""), s, o
    } else printf "%.1f", x
  }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
echo "Instructions per request (callgrind), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit,"
echo "$("${EXE[ha]}" -v | awk 'NR == 1 { print "HAProxy " $3 }'), $(valgrind --version)."
echo "Per request: (totals of a run of $HIGH requests - totals of a run of $LOW) / $REQUESTS;"
echo "$CONC concurrent clients, $WARMUP warm-up requests before each run, all threads of the proxy,"
echo "user space only. Valgrind counts each iteration of \`rep movs\`/\`rep stos\` as one instruction."
echo
echo "| scenario | per request | rhaproxy | HAProxy | rhaproxy / HAProxy |"
echo "|---|---|---:|---:|---:|"
for sc in close keepalive; do
  for m in "Ir:instructions" "D1mr:D1 read misses" "D1mw:D1 write misses" "I1mr:I1 misses" \
    "Bcm:conditional branch mispredictions" "Bim:indirect branch mispredictions"; do
    ev=${m%%:*} label=${m#*:}
    a=$(per_request "$sc" rh "$ev") b=$(per_request "$sc" ha "$ev")
    echo "| $sc | $label ($ev) | $(fmt "$a") | $(fmt "$b") | $(ratio "$a" "$b") |"
  done
done
