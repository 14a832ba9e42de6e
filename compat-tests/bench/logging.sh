#!/usr/bin/env bash
# Benchmark (not a test): the cost of traffic logging. Keep-alive HTTP through rhaproxy and
# HAProxy 2.6 (`mode http`, `option httplog`, nbthread 1, proxy pinned to CPU 0) to nginx, with
# logging off and with every request logged to a UDP syslog receiver on loopback; wrk, nginx and
# the receiver on CPU 1. Alternating runs (rh-off, rh-udp, ha-off, ha-udp per round), medians.
# Reports req/s, the proxy's CPU (utime+stime from /proc/PID/stat over the wrk run) per 10k
# requests, and how many log datagrams the receiver got per request.
#
# A small process napping 1 ms in a loop runs on CPU 0 throughout (disable with --no-waker): on
# a VM, a CPU that idles between requests wakes slowly, and rhaproxy's log sender thread, which
# naps 1 ms while lines flow, kept CPU 0 awake in the logging runs only (measured: the same
# napper alone took rhaproxy without logging from ~8k to ~17-21k req/s). With the waker both
# modes and both proxies see the same CPU.
#
# Usage: compat-tests/bench/logging.sh [--runs N] [--duration S] [--conns C] [--no-waker]
# Needs wrk, nginx, haproxy, taskset, python3. Kills only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=compat-tests/bench/common.sh
. compat-tests/bench/common.sh
RUNS=5 DUR=3 CONNS=50 WAKER=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --no-waker) WAKER=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for t in wrk nginx haproxy taskset python3; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
log() { echo "[logbench $(date +%H:%M:%S)] $*" >&2; }

bench_setup logbench
start_bg() { # start_bg NAME CMD...; PID in LAST_PID
  local name=$1; shift
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
stop_pid() {
  local pid=$1 p keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT: up to 5 s
  local i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

log "building rhaproxy (release)"
cargo build --release -q
declare -A EXE=([rh]=$PWD/target/release/rhaproxy [ha]=$(command -v haproxy))
declare -A NAME=([rh]=rhaproxy [ha]=HAProxy)
HZ=$(getconf CLK_TCK)

NGX=$(free_port) FE=$(free_port) LOGP=$(free_port)
small_nginx_conf "$tmp/nginx" "$NGX"
start_bg nginx taskset -c 1 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
wait_port "$NGX" || { echo "nginx did not start" >&2; cat "$tmp/nginx.err" >&2; exit 1; }

# The syslog receiver: counts datagrams; `kill -USR1` makes it write the count and reset.
cat >"$tmp/recv.py" <<'EOF'
import signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
n = 0
def dump(*_):
    global n
    with open(sys.argv[2], "w") as f:
        f.write(f"{n}\n")
    n = 0
signal.signal(signal.SIGUSR1, dump)
while True:
    try:
        s.recv(65536)
        n += 1
    except InterruptedError:
        pass
EOF
start_bg recv taskset -c 1 python3 "$tmp/recv.py" "$LOGP" "$tmp/count"
RECV_PID=$LAST_PID
if [ "$WAKER" = 1 ]; then
  start_bg waker taskset -c 0 python3 -c 'import time
while True: time.sleep(0.001)'
fi
sleep 0.3

gen_cfg() { # gen_cfg off|udp
  local logline="" glog=""
  if [ "$1" = udp ]; then
    glog="    log 127.0.0.1:$LOGP local0"
    logline="    log global"
  fi
  cat <<EOF
global
    nbthread 1
    maxconn 2000
$glog

defaults
    mode http
$logline
    option httplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

listen fe
    bind 127.0.0.1:$FE
    server s1 127.0.0.1:$NGX
EOF
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one_run IMPL MODE: prints "reqs_per_s cpu_ms_per_10k logs_per_req"
one_run() {
  local i=$1 m=$2
  gen_cfg "$m" >"$tmp/$i-$m.cfg"
  start_bg "proxy-$i-$m" taskset -c 0 "${EXE[$i]}" -db -f "$tmp/$i-$m.cfg"
  local pid=$LAST_PID
  wait_port "$FE" || { echo "${NAME[$i]} did not listen" >&2; cat "$tmp/proxy-$i-$m.err" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c"$CONNS" -d1 "http://127.0.0.1:$FE/" >/dev/null 2>&1 # warm-up
  sleep 0.3
  rm -f "$tmp/count"; kill -USR1 "$RECV_PID"; sleep 0.1 # reset the counter
  local c0 c1 out rps reqs n
  c0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "http://127.0.0.1:$FE/")
  c1=$(cpu_ticks "$pid")
  sleep 0.5
  rm -f "$tmp/count"; kill -USR1 "$RECV_PID"
  for _ in $(seq 50); do [ -s "$tmp/count" ] && break; sleep 0.05; done
  n=$(cat "$tmp/count" 2>/dev/null || echo 0)
  stop_pid "$pid"
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$rps" -v q="$reqs" -v c=$((c1 - c0)) -v hz="$HZ" -v n="$n" \
    'BEGIN { printf "%.0f %.1f %.2f\n", r, (c * 1000 / hz) / (q / 10000), n / q }'
}

declare -A RPS CPU LPR
for r in $(seq "$RUNS"); do
  for i in rh ha; do
    for m in off udp; do
      read -r a b c < <(one_run "$i" "$m")
      RPS[$i-$m]+="$a "; CPU[$i-$m]+="$b "; LPR[$i-$m]+="$c "
      log "round $r ${NAME[$i]} log=$m: $a req/s, $b ms CPU/10k req, $c logs/req"
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| proxy | logging | req/s (median of $RUNS) | proxy CPU ms / 10k req | log datagrams / req |"
echo "|---|---|---|---|---|"
for i in rh ha; do
  for m in off udp; do
    label=off; [ "$m" = udp ] && label="httplog to UDP syslog"
    echo "| ${NAME[$i]} | $label | $(median <<<"${RPS[$i-$m]}") | $(median <<<"${CPU[$i-$m]}") | $(median <<<"${LPR[$i-$m]}") |"
  done
done
for i in rh ha; do
  awk -v a="$(median <<<"${RPS[$i-off]}")" -v b="$(median <<<"${RPS[$i-udp]}")" \
      -v c="$(median <<<"${CPU[$i-off]}")" -v d="$(median <<<"${CPU[$i-udp]}")" -v n="${NAME[$i]}" \
    'BEGIN { printf "%s: logging costs %.1f%% req/s and %+.1f%% CPU per request\n", n, (1 - b / a) * 100, (d / c - 1) * 100 }'
done
