#!/usr/bin/env bash
# Per-request costs of rhaproxy and HAProxy 2.6 side by side: syscalls per request (strace -c)
# and user/system CPU microseconds per request (from /proc/PID/stat), loopback TCP segments and
# pure ACKs per request (nstat, first run of each proxy), the TIME_WAIT entries a run leaves on
# the client's side and on the proxy's (ss, a first run; a client that closes before the proxy's
# FIN keeps the entry, which its next connect() has to step over), for keep-alive and
# `Connection: close` requests in `mode http`, optionally through `source 0.0.0.0 usesrc
# clientip` (root). Syscall counts do not depend on the machine's load; CPU times do (the
# load average is printed), so rounds alternate the two proxies.
#
# Usage: compat-tests/bench/per_request.sh [--rounds N] [--duration S] [--usesrc]
#   --rounds    alternated CPU rounds per scenario and proxy (default 3)
#   --duration  seconds of each wrk run (default 3)
#   --usesrc    the proxied frontend uses `source 0.0.0.0 usesrc clientip` (needs root)
# Proxy pinned to CPU 0 (nbthread 1), wrk (-t1 -c50; -c10 under strace) and nginx to CPU 1.
# Kills only the processes it started (by PID), on exit too.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=compat-tests/bench/common.sh
. compat-tests/bench/common.sh
ROOT=$PWD
ROUNDS=3 DURATION=3 USESRC=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --usesrc) USESRC=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for t in wrk nginx haproxy taskset strace nstat rustc; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
[ "$USESRC" = 0 ] || [ "$(id -u)" = 0 ] || { echo "--usesrc needs root" >&2; exit 2; }

bench_setup perreq

cargo build --release -q
rustc -O --edition 2021 -o "$tmp/bt" compat-tests/bench/benchtool.rs
mapfile -t P < <("$tmp/bt" ports 3)
NGX=${P[0]}
declare -A PORT=([rh]=${P[1]} [ha]=${P[2]})
declare -A EXE=([rh]=$ROOT/target/release/rhaproxy [ha]=$(command -v haproxy))
declare -A NAME=([rh]=rhaproxy [ha]=HAProxy)

small_nginx_conf "$tmp/nginx" "$NGX"
taskset -c 1 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.err" 2>&1 &
PIDS+=("$!")
"$tmp/bt" wait "127.0.0.1:$NGX" 5000

src=""
[ "$USESRC" = 1 ] && src="    source 0.0.0.0 usesrc clientip"
for i in rh ha; do
  small_http_cfg "$tmp/$i.cfg" "${PORT[$i]}" "$NGX" "$src"
done

# start IMPL: the proxy pinned to CPU 0; its PID in PROXY.
start() {
  taskset -c 0 "${EXE[$1]}" -db -f "$tmp/$1.cfg" >"$tmp/$1.out" 2>&1 &
  PROXY=$!
  PIDS+=("$PROXY")
  "$tmp/bt" wait "127.0.0.1:${PORT[$1]}" 5000
}
stop() { kill "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; }
wrk_run() { # wrk_run IMPL CONNS HEADER...: requests done (on stdout)
  local i=$1 c=$2; shift 2
  taskset -c 1 wrk -t1 -c"$c" -d"${DURATION}s" "$@" "http://127.0.0.1:${PORT[$i]}/" >"$tmp/wrk.out" 2>&1
  awk '/requests in/ {print $1}' "$tmp/wrk.out"
}

# TIME_WAIT entries of the proxy's client connections: "client-side proxy-side".
tw() { ss -Htan state time-wait | awk -v p=":${PORT[$1]}" '
  substr($3, length($3) - length(p) + 1) == p { px++ }
  substr($4, length($4) - length(p) + 1) == p { cl++ }
  END { printf "%d %d\n", cl, px }'; }

declare -A SC CPU_U CPU_S SEG ACK TW
# `close` first: its TIME_WAIT count starts on ports no run has used yet.
for sc in close keepalive; do
  hdr=()
  [ "$sc" = close ] && hdr=(-H "Connection: close")
  for i in rh ha; do
    start "$i"
    # TIME_WAIT by side, from a first run on this proxy's port (later runs' clients would
    # reuse the entries it leaves; reported for `close` only).
    read -r tc0 tp0 < <(tw "$i")
    wrk_run "$i" 50 "${hdr[@]}" >/dev/null
    read -r tc1 tp1 < <(tw "$i")
    TW[$sc.$i]="$((tc1 - tc0)) of $((tc1 - tc0 + tp1 - tp0))"
    strace -c -f -p "$PROXY" -o "$tmp/strace.txt" 2>/dev/null & sp=$!
    sleep 0.5
    n=$(wrk_run "$i" 10 "${hdr[@]}")
    kill -INT "$sp"; wait "$sp" 2>/dev/null || true
    stop
    SC[$sc.$i]=$(awk -v n="$n" '$NF == "total" { printf "%.2f", $4 / n }' "$tmp/strace.txt")
    awk -v n="$n" 'NR > 2 && NF >= 5 && $NF != "total" { printf "%s %.2f\n", $NF, $4 / n }' \
      "$tmp/strace.txt" | sort -k2 -rn >"$tmp/sc.$sc.$i"
  done
  for r in $(seq "$ROUNDS"); do
    for i in rh ha; do
      start "$i"
      # Loopback TCP segments (all sides) and pure ACKs per request, from the first run.
      [ "$r" = 1 ] && nstat -n >/dev/null
      read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$PROXY/stat")
      n=$(wrk_run "$i" 50 "${hdr[@]}")
      read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PROXY/stat")
      if [ "$r" = 1 ]; then
        nstat TcpOutSegs TcpExtTCPPureAcks >"$tmp/nstat.txt"
        SEG[$sc.$i]=$(awk -v n="$n" '$1 == "TcpOutSegs" { printf "%.2f", $2 / n }' "$tmp/nstat.txt")
        ACK[$sc.$i]=$(awk -v n="$n" '$1 == "TcpExtTCPPureAcks" { printf "%.2f", $2 / n }' "$tmp/nstat.txt")
      fi
      stop
      clk=$(getconf CLK_TCK)
      CPU_U[$sc.$i]+="$(awk -v d=$((u1 - u0)) -v k="$clk" -v n="$n" 'BEGIN { printf "%.1f", d / k / n * 1e6 }') "
      CPU_S[$sc.$i]+="$(awk -v d=$((s1 - s0)) -v k="$clk" -v n="$n" 'BEGIN { printf "%.1f", d / k / n * 1e6 }') "
    done
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "Per-request costs, $(date -u '+%Y-%m-%d %H:%M UTC'), $([ "$USESRC" = 1 ] && echo 'usesrc clientip, ')load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| scenario | metric | rhaproxy | HAProxy |"
echo "|---|---|---:|---:|"
for sc in keepalive close; do
  echo "| $sc | syscalls per request (strace -c, wrk -c10) | ${SC[$sc.rh]} | ${SC[$sc.ha]} |"
  echo "| $sc | loopback TCP segments per request (nstat, first run) | ${SEG[$sc.rh]} | ${SEG[$sc.ha]} |"
  echo "| $sc | of which pure ACKs | ${ACK[$sc.rh]} | ${ACK[$sc.ha]} |"
  [ "$sc" = close ] &&
    echo "| $sc | TIME_WAIT left on the client's side, of all the run left (ss, a first run) | ${TW[$sc.rh]} | ${TW[$sc.ha]} |"
  echo "| $sc | user µs per request, median of $ROUNDS runs (each run) | $(echo "${CPU_U[$sc.rh]}" | median) (${CPU_U[$sc.rh]% }) | $(echo "${CPU_U[$sc.ha]}" | median) (${CPU_U[$sc.ha]% }) |"
  echo "| $sc | system µs per request, median of $ROUNDS runs (each run) | $(echo "${CPU_S[$sc.rh]}" | median) (${CPU_S[$sc.rh]% }) | $(echo "${CPU_S[$sc.ha]}" | median) (${CPU_S[$sc.ha]% }) |"
done
for sc in keepalive close; do
  echo
  echo "Syscalls per $sc request:"
  echo
  echo "| syscall | rhaproxy | HAProxy |"
  echo "|---|---:|---:|"
  join -a1 -a2 -e - -o 0,1.2,2.2 <(sort "$tmp/sc.$sc.rh") <(sort "$tmp/sc.$sc.ha") |
    awk '{ a = ($2 == "-") ? 0 : $2; b = ($3 == "-") ? 0 : $3 }
      a >= 0.01 || b >= 0.01 { printf "| %s | %s | %s |\n", $1, $2, $3 }'
done
