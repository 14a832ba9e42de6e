#!/usr/bin/env bash
# Benchmark (not a test): rhaproxy against HAProxy 2.6 proxying to nginx on loopback, same
# config (nbthread 1), proxy on CPU 0, wrk/nginx/holder on CPU 1, alternating runs, medians.
#
# Usage: compat-tests/bench/proxy.sh [--runs N] [--duration S] [--conns C] [--idle N]
#                                    [--idle-runs N] [--http-mode auto|tcp|http]
#   --runs       alternating rounds: every scenario once per proxy each (default 9)
#   --duration   seconds per wrk run (default 2)
#   --conns      wrk connections (default 50)
#   --idle       idle connections held for the RSS scenarios (default 5000)
#   --idle-runs  alternating runs per RSS scenario and proxy (default 3; 0 skips them)
#   --only LIST  throughput scenarios to run, comma-separated, of: ka, big, close, usesrc_ka,
#                usesrc_close, stick_ka (default: all; many rounds of one scenario settle a
#                small ratio)
#   --http-mode  mode of the HTTP scenarios: `auto` (default) uses `mode http` once
#                `rhaproxy -c` accepts it and the runtime answers HTTP itself (probe: a
#                malformed request must get the proxy's own 400, not nginx's), `mode tcp`
#                otherwise; `tcp`/`http` force it.
#
# Needs wrk, nginx, haproxy, taskset, rustc; the `usesrc clientip` rows need root. Prints a Markdown
# table on stdout, progress on stderr. Kills only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=compat-tests/bench/common.sh
. compat-tests/bench/common.sh
ROOT=$PWD

RUNS=9 DUR=2 CONNS=50 IDLE=5000 IDLE_RUNS=3 HTTP_MODE=auto ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --idle-runs) IDLE_RUNS=$2; shift 2 ;;
    --http-mode) HTTP_MODE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$HTTP_MODE" in auto|tcp|http) ;; *) echo "--http-mode: auto, tcp or http" >&2; exit 2 ;; esac
for t in wrk nginx haproxy taskset rustc; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Processes we start, and cleanup.
bench_setup bench
LAST_PID=
# start_bg LOGNAME CMD...: runs CMD in the background; its PID in LAST_PID.
start_bg() {
  local name=$1; shift
  : >"$tmp/$name.out" # truncated here, not in the child: callers poll it right away
  "$@" >>"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
wait_pid() { # waits for a process we started to exit on its own
  local pid=$1 p keep=()
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() {
  local pid=$1 p keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

ulimit -n "$(ulimit -Hn)"
need=$((2 * IDLE + 200))
if [ "$(ulimit -n)" -lt "$need" ]; then
  echo "ulimit -n is $(ulimit -n), need $need for --idle $IDLE" >&2; exit 2
fi
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1

# ---------------------------------------------------------------------------------------------
log "building rhaproxy (release) and the bench helper"
cargo build --release -q
RH=$ROOT/target/release/rhaproxy
HA=$(command -v haproxy)
rustc -O --edition 2021 -o "$tmp/benchtool" compat-tests/bench/benchtool.rs
BT=$tmp/benchtool

# Ports: nginx small, nginx big, then per proxy: http, usesrc, tcp-big, tcp-idle, stick.
mapfile -t P < <("$BT" ports 12)
NGX_SMALL=${P[0]} NGX_BIG=${P[1]}
declare -A FE_HTTP FE_USESRC FE_BIG FE_TCP FE_STICK
FE_HTTP[rh]=${P[2]} FE_USESRC[rh]=${P[3]} FE_BIG[rh]=${P[4]} FE_TCP[rh]=${P[5]}
FE_HTTP[ha]=${P[6]} FE_USESRC[ha]=${P[7]} FE_BIG[ha]=${P[8]} FE_TCP[ha]=${P[9]}
FE_STICK[rh]=${P[10]} FE_STICK[ha]=${P[11]}
declare -A EXE=([rh]=$RH [ha]=$HA) NAME=([rh]=rhaproxy [ha]=HAProxy)

# ---------------------------------------------------------------------------------------------
# nginx: own prefix, config, pid file; one process (no master) pinned to CPU 1.
mkdir -p "$tmp/nginx/logs" "$tmp/nginx/www"
head -c 1048576 /dev/urandom >"$tmp/nginx/www/big.bin"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((IDLE * 3 + 1000));
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections $((IDLE * 3 + 1000)); }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGX_SMALL backlog=4096;
        location / { return 200 "hello from the small backend\n"; }
        location = /whoami { return 200 "\$remote_addr\n"; }
    }
    server {
        listen 127.0.0.1:$NGX_BIG backlog=4096;
        root $tmp/nginx/www;
        location / { try_files /big.bin =404; }
    }
}
EOF
start_bg nginx taskset -c 1 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
NGX_PID=$LAST_PID
"$BT" wait "127.0.0.1:$NGX_SMALL" 5000 && "$BT" wait "127.0.0.1:$NGX_BIG" 5000 ||
  { echo "nginx did not start:" >&2; cat "$tmp/nginx.err" "$tmp/nginx/logs/error.log" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Proxy config: identical for both proxies except the listening ports.
# gen_cfg IMPL HTTP_MODE
gen_cfg() {
  local i=$1 m=$2 ka=""
  [ "$m" = http ] && ka="    timeout http-keep-alive 60s"
  local usesrc="    source 0.0.0.0 usesrc clientip"
  # The usual per-client rate limit (never reached here): a stick table and its counters on
  # every request.
  local stick=""
  [ "$m" = http ] && stick="
listen http_stick
    mode http
    bind 127.0.0.1:${FE_STICK[$i]}
    stick-table type ip size 1m expire 60s store http_req_rate(10s),http_req_cnt,conn_cur
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }
    server s1 127.0.0.1:$NGX_SMALL"
  [ "$IS_ROOT" = 1 ] || usesrc="    # usesrc clientip needs root"
  cat <<EOF
global
    nbthread 1
    maxconn $((IDLE + 1000))

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
$ka

listen http_small
    mode $m
    bind 127.0.0.1:${FE_HTTP[$i]}
    server s1 127.0.0.1:$NGX_SMALL

listen http_usesrc
    mode $m
    bind 127.0.0.1:${FE_USESRC[$i]}
$usesrc
    server s1 127.0.0.1:$NGX_SMALL

listen tcp_big
    mode tcp
    bind 127.0.0.1:${FE_BIG[$i]}
    server s1 127.0.0.1:$NGX_BIG

listen tcp_small
    mode tcp
    bind 127.0.0.1:${FE_TCP[$i]}
    server s1 127.0.0.1:$NGX_SMALL
$stick
EOF
}

# start_proxy IMPL MODE: starts it pinned to CPU 0, waits for its listeners; PID in LAST_PID.
start_proxy() {
  local i=$1 m=$2
  gen_cfg "$i" "$m" >"$tmp/$i.cfg"
  start_bg "proxy-$i" taskset -c 0 "${EXE[$i]}" -db -f "$tmp/$i.cfg"
  local pid=$LAST_PID port
  local ports=("${FE_HTTP[$i]}" "${FE_USESRC[$i]}" "${FE_BIG[$i]}" "${FE_TCP[$i]}")
  [ "$m" = http ] && ports+=("${FE_STICK[$i]}")
  for port in "${ports[@]}"; do
    if ! "$BT" wait "127.0.0.1:$port" 5000; then
      echo "${NAME[$i]} did not listen on $port:" >&2; cat "$tmp/proxy-$i.err" >&2; exit 1
    fi
  done
  LAST_PID=$pid
}

# ---------------------------------------------------------------------------------------------
# Which mode for the HTTP scenarios: does rhaproxy accept `mode http` and answer HTTP itself?
RH_HTTP=no
gen_cfg rh http >"$tmp/probe.cfg"
if "$RH" -c -q -f "$tmp/probe.cfg" >/dev/null 2>&1; then
  start_proxy rh http; pid=$LAST_PID
  [ "$("$BT" probe "127.0.0.1:${FE_HTTP[rh]}")" = http ] && RH_HTTP=yes
  stop_pid "$pid"
  start_proxy ha http; pid=$LAST_PID
  [ "$("$BT" probe "127.0.0.1:${FE_HTTP[ha]}")" = http ] ||
    log "warning: the HTTP probe does not recognise HAProxy's mode http either"
  stop_pid "$pid"
fi
case "$HTTP_MODE/$RH_HTTP" in
  auto/yes) HTTP_MODE=http
    MODE_NOTE="rhaproxy serves \`mode http\` (probe), so the HTTP scenarios ran in \`mode http\` on both proxies." ;;
  auto/no) HTTP_MODE=tcp
    MODE_NOTE="rhaproxy does not serve \`mode http\` yet (probe: a malformed request gets no 400 from the proxy itself), so the HTTP scenarios ran in \`mode tcp\` on both proxies." ;;
  http/yes) MODE_NOTE="HTTP scenarios in \`mode http\` on both proxies (--http-mode http)." ;;
  http/no) MODE_NOTE="HTTP scenarios in \`mode http\` on both proxies (--http-mode http), but rhaproxy does not answer HTTP itself yet (probe): its figures are for a TCP tunnel." ;;
  tcp/*) MODE_NOTE="HTTP scenarios in \`mode tcp\` on both proxies (--http-mode tcp)." ;;
esac
log "HTTP scenarios in mode $HTTP_MODE"

# ---------------------------------------------------------------------------------------------
# Measurements.
cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\n", summary.requests, summary.bytes,
    summary.duration, latency:percentile(99.0), e.connect + e.read + e.write + e.timeout,
    e.status))
end
EOF
mkdir -p "$tmp/res"
CLK=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of every thread of PID
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
put() { echo "$3" >>"$tmp/res/$1.$2"; } # put SCENARIO IMPL VALUE

# wrk_run SCENARIO IMPL PID URL [wrk args]: one wrk run; records rps, MiB/s, p99 (ms), CPU
# seconds per 100k requests, proxy CPU % and errors.
wrk_run() {
  local sc=$1 i=$2 pid=$3 url=$4; shift 4
  local c0 c1 out line req bytes dur p99 err st
  c0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$tmp/report.lua" "$@" "$url" 2>&1) || true
  c1=$(cpu_ticks "$pid")
  line=$(grep '^BENCH ' <<<"$out" || true)
  if [ -z "$line" ]; then echo "wrk failed: $out" >&2; exit 1; fi
  read -r _ req bytes dur p99 err st <<<"$line"
  put "$sc.rps" "$i" "$(awk -v r="$req" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  put "$sc.mibs" "$i" "$(awk -v b="$bytes" -v d="$dur" 'BEGIN { printf "%.1f", b / 1048576 / (d / 1e6) }')"
  put "$sc.p99" "$i" "$(awk -v p="$p99" 'BEGIN { printf "%.3f", p / 1000 }')"
  put "$sc.cpu100k" "$i" "$(awk -v t=$((c1 - c0)) -v k="$CLK" -v r="$req" 'BEGIN { printf "%.3f", r ? t / k * 100000 / r : 0 }')"
  put "$sc.cpugib" "$i" "$(awk -v t=$((c1 - c0)) -v k="$CLK" -v b="$bytes" 'BEGIN { printf "%.3f", b ? t / k * 1073741824 / b : 0 }')"
  put "$sc.cpupct" "$i" "$(awk -v t=$((c1 - c0)) -v k="$CLK" -v d="$dur" 'BEGIN { printf "%.0f", t / k / (d / 1e6) * 100 }')"
  put "$sc.errors" "$i" "$((err + st))"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M UTC')
T0=$(date +%s)

# RSS per idle connection: a fresh proxy each run, RSS after one request, then with IDLE idle
# connections (each has done one request, so the server side is connected too). First, while
# loopback has few TIME_WAIT sockets (the close scenarios leave tens of thousands, which make
# thousands of back-to-back connects crawl).
idle_run() { # idle_run SCENARIO IMPL PORT
  local sc=$1 i=$2 port=$3 pid hp before after n
  start_proxy "$i" "$HTTP_MODE"; pid=$LAST_PID
  start_bg warm "$BT" hold "127.0.0.1:$port" 1 / 0; wait_pid "$LAST_PID"
  sleep 0.5
  before=$(rss_kib "$pid")
  start_bg "holder" taskset -c 1 "$BT" hold "127.0.0.1:$port" "$IDLE" / 3; hp=$LAST_PID
  for n in $(seq 1200); do
    grep -q '^ready' "$tmp/holder.out" 2>/dev/null && break
    # Gone or a zombie (kill -0 succeeds on zombies).
    if [ "$(sed 's/^.*) //' "/proc/$hp/stat" 2>/dev/null | cut -c1)" = Z ] || [ ! -e "/proc/$hp" ]; then
      grep -q '^ready' "$tmp/holder.out" && break
      echo "holder failed: $(cat "$tmp/holder.err")" >&2; exit 1
    fi
    sleep 0.05
  done
  grep -q '^ready' "$tmp/holder.out" || { echo "holder timed out: $(cat "$tmp/holder.out" "$tmp/holder.err")" >&2; exit 1; }
  sleep 1
  after=$(rss_kib "$pid")
  wait_pid "$hp"
  stop_pid "$pid"
  put "$sc.kib" "$i" "$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.2f", (a - b) / n }')"
  put "$sc.rss0" "$i" "$before"
}
for r in $(seq "$IDLE_RUNS"); do
  for i in rh ha; do
    log "idle RSS run $r/$IDLE_RUNS ${NAME[$i]}"
    # In the mode tcp fallback the HTTP frontend is a TCP pair too: measured once.
    [ "$HTTP_MODE" = http ] && idle_run idle_http "$i" "${FE_HTTP[$i]}"
    idle_run idle_tcp "$i" "${FE_TCP[$i]}"
  done
done
log "starting both proxies (throughput scenarios)"
start_proxy rh "$HTTP_MODE"; declare -A PID=([rh]=$LAST_PID)
start_proxy ha "$HTTP_MODE"; PID[ha]=$LAST_PID

if [ "$IS_ROOT" = 1 ]; then
  # usesrc must really take effect: from 127.0.0.77, nginx must see 127.0.0.77 (and 127.0.0.1
  # through the frontend without it).
  for i in rh ha; do
    a=$("$BT" whoami "127.0.0.1:${FE_USESRC[$i]}" 127.0.0.77 || true)
    b=$("$BT" whoami "127.0.0.1:${FE_HTTP[$i]}" 127.0.0.77 || true)
    if [ "$a" != 127.0.0.77 ] || [ "$b" != 127.0.0.1 ]; then
      echo "${NAME[$i]}: usesrc clientip check failed (backend saw '$a' with it, '$b' without)" >&2
      exit 1
    fi
  done
  SCEN=(ka usesrc_ka big close usesrc_close)
else
  SCEN=(ka big close)
fi
[ "$HTTP_MODE" = http ] && SCEN+=(stick_ka)
if [ -n "$ONLY" ]; then
  keep=()
  for sc in "${SCEN[@]}"; do
    case ",$ONLY," in *",$sc,"*) keep+=("$sc") ;; esac
  done
  [ "${#keep[@]}" -gt 0 ] || { echo "--only $ONLY: no such scenario here" >&2; exit 2; }
  SCEN=("${keep[@]}")
fi
log "warm-up"
for i in rh ha; do
  taskset -c 1 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${FE_HTTP[$i]}/" >/dev/null 2>&1 || true
done
# Rounds: every scenario once per round, rhaproxy then HAProxy, so drifts in the machine's load
# (and the TIME_WAIT sockets the close runs leave) fall on all scenarios and both proxies alike.
for r in $(seq "$RUNS"); do
  for sc in "${SCEN[@]}"; do
    for i in rh ha; do
      log "$sc run $r/$RUNS ${NAME[$i]}"
      case $sc in
        ka) wrk_run ka "$i" "${PID[$i]}" "http://127.0.0.1:${FE_HTTP[$i]}/" ;;
        close) wrk_run close "$i" "${PID[$i]}" "http://127.0.0.1:${FE_HTTP[$i]}/" -H "Connection: close" ;;
        big) wrk_run big "$i" "${PID[$i]}" "http://127.0.0.1:${FE_BIG[$i]}/big.bin" ;;
        usesrc_ka) wrk_run usesrc_ka "$i" "${PID[$i]}" "http://127.0.0.1:${FE_USESRC[$i]}/" ;;
        usesrc_close) wrk_run usesrc_close "$i" "${PID[$i]}" "http://127.0.0.1:${FE_USESRC[$i]}/" -H "Connection: close" ;;
        stick_ka) wrk_run stick_ka "$i" "${PID[$i]}" "http://127.0.0.1:${FE_STICK[$i]}/" ;;
      esac
    done
  done
done
stop_pid "${PID[rh]}"; stop_pid "${PID[ha]}"

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - T0))

# ---------------------------------------------------------------------------------------------
# Report.
median() { sort -g "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
med() { median "$tmp/res/$1.$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
sum_errors() { awk '{ s += $1 } END { print s + 0 }' "$tmp/res/$1.errors.rh" "$tmp/res/$1.errors.ha"; }
range() { sort -g "$tmp/res/$1.$2" | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR > 1) printf " (%s–%s)", a, b }'; }
paired() { # median (min–max) of the per-round ratios rhaproxy/HAProxy (line r = round r)
  paste "$tmp/res/$1.rh" "$tmp/res/$1.ha" | awk '$2 > 0 { printf "%.2f\n", $1 / $2 }' >"$tmp/paired"
  [ -s "$tmp/paired" ] || { echo "n/a"; return; }
  printf '%s%s' "$(median "$tmp/paired")" \
    "$(sort -g "$tmp/paired" | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR > 1) printf " (%s–%s)", a, b }')"
}
row() { # row LABEL KEY BETTER: medians (min–max), ratio of the medians, per-round ratios
  local a b
  [ -s "$tmp/res/$2.rh" ] || return 0 # a scenario not run (--only, --idle-runs 0)
  a=$(med "$2" rh); b=$(med "$2" ha)
  printf '| %s | %s%s | %s%s | %s | %s | %s |\n' "$1" "$a" "$(range "$2" rh)" "$b" "$(range "$2" ha)" \
    "$(ratio "$a" "$b")" "$(paired "$2")" "$3"
}
hm=$HTTP_MODE
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "Proxy benchmark, $START: $(nproc) vCPU ($cpu_model), Linux $(uname -r), $(haproxy -v | head -1 | cut -d' ' -f1-3)."
echo "Proxy on CPU 0 (nbthread 1), wrk -t1 -c$CONNS and nginx on CPU 1; $RUNS alternating ${DUR}s runs per"
echo "scenario and proxy (medians), $IDLE_RUNS runs of $IDLE idle connections. Both proxies run the same config"
echo "but for the listening ports; both run during the throughput rounds, one loaded at a time."
echo "$MODE_NOTE"
echo "Load average before/after: $LOAD0 / $LOAD1; wall time ${ELAPSED}s."
echo
echo "| Scenario | rhaproxy median (min–max) | HAProxy median (min–max) | rhaproxy / HAProxy (medians) | per-round rhaproxy / HAProxy: median (min–max) | better |"
echo "|---|---:|---:|---:|---:|---|"
row "HTTP keep-alive, small body (mode $hm): req/s" ka.rps higher
row "HTTP keep-alive: p99 latency (ms)" ka.p99 lower
row "HTTP keep-alive: proxy CPU s per 100k req" ka.cpu100k lower
row "HTTP keep-alive: proxy CPU %" ka.cpupct "-"
row "\`Connection: close\` (mode $hm): req/s" close.rps higher
row "\`Connection: close\`: p99 latency (ms)" close.p99 lower
row "\`Connection: close\`: proxy CPU s per 100k req" close.cpu100k lower
row "\`Connection: close\`: proxy CPU %" close.cpupct "-"
row "TCP, 1 MiB bodies: MiB/s" big.mibs higher
row "TCP, 1 MiB bodies: proxy CPU s per GiB" big.cpugib lower
row "TCP, 1 MiB bodies: proxy CPU %" big.cpupct "-"
if [ "$IS_ROOT" = 1 ]; then
  row "\`usesrc clientip\`, keep-alive (mode $hm): req/s" usesrc_ka.rps higher
  row "\`usesrc clientip\`, keep-alive: proxy CPU s per 100k req" usesrc_ka.cpu100k lower
  row "\`usesrc clientip\`, \`Connection: close\`: new conn/s" usesrc_close.rps higher
  row "\`usesrc clientip\`, \`Connection: close\`: proxy CPU s per 100k" usesrc_close.cpu100k lower
fi
if [ -s "$tmp/res/stick_ka.rps.rh" ]; then
  row "Stick table rate limit (\`track-sc0 src\`), keep-alive: req/s" stick_ka.rps higher
  row "Stick table rate limit, keep-alive: proxy CPU s per 100k req" stick_ka.cpu100k lower
fi
if [ "$HTTP_MODE" = http ]; then
  row "Idle HTTP keep-alive connection (mode http): KiB RSS each" idle_http.kib lower
  row "Idle TCP connection pair: KiB RSS each" idle_tcp.kib lower
else
  row "Idle connection pair (HTTP keep-alive in mode tcp = TCP pair): KiB RSS each" idle_tcp.kib lower
fi
row "RSS after start and one request (KiB)" idle_tcp.rss0 lower
echo
if [ "$IS_ROOT" = 1 ] && [ -s "$tmp/res/usesrc_ka.rps.rh" ] && [ -s "$tmp/res/ka.rps.rh" ] &&
  [ -s "$tmp/res/usesrc_close.rps.rh" ] && [ -s "$tmp/res/close.rps.rh" ]; then
  for i in rh ha; do
    echo "- ${NAME[$i]}, \`usesrc clientip\` / without: keep-alive req/s $(ratio "$(med usesrc_ka.rps $i)" "$(med ka.rps $i)"), new conn/s $(ratio "$(med usesrc_close.rps $i)" "$(med close.rps $i)"); proxy CPU per 100k new connections $(ratio "$(med usesrc_close.cpu100k $i)" "$(med close.cpu100k $i)")."
  done
elif [ "$IS_ROOT" != 1 ]; then
  echo "- \`usesrc clientip\` rows skipped: not root."
fi
busy=100
[ -s "$tmp/res/ka.cpupct.rh" ] && busy=$(printf '%s\n' "$(med ka.cpupct rh)" "$(med ka.cpupct ha)" | sort -g | tail -1)
if [ "$busy" -lt 80 ]; then
  echo "- The proxies used at most $busy% of CPU 0 in the keep-alive runs: the bottleneck was CPU 1 (wrk and nginx) and the other load on the machine, so the req/s and p99 ratios mostly compare the client side and noise; *proxy CPU s per 100k req* and RSS are the figures that compare the proxies."
fi
errs=""
for sc in "${SCEN[@]}"; do
  e=$(sum_errors "$sc"); [ "$e" = 0 ] || errs="$errs $sc: $e;"
done
echo "- wrk socket/status errors:${errs:- none}"
