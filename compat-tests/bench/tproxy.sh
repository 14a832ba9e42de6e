#!/usr/bin/env bash
# Benchmark (not a test): transparent proxying (`source 0.0.0.0 usesrc clientip`) against the
# same backend without `usesrc`, rhaproxy against HAProxy 2.6, in the network-namespace
# topology of docs/tproxy.md:
#
#   client ns   eth0 10.10.1.2/24, gw 10.10.1.1          wrk (CPU 1)
#      | veth
#   proxy ns    lb-c 10.10.1.1/24, lb-s 10.10.2.1/24      rhaproxy and HAProxy (CPU 0, nbthread 1)
#      | veth     + samples/tproxy/policy-routing.sh and samples/tproxy/nftables.conf, as shipped
#   switch ns   br0
#      |-- server ns 1  eth0 10.10.2.2/24, gw 10.10.2.1   nginx (CPU 1)
#      `-- server ns 2  eth0 10.10.2.3/24, gw 10.10.2.1   nginx (CPU 1)
#
# Four setups, {rhaproxy, HAProxy} x {usesrc clientip, no usesrc}, one config for both proxies
# (two `listen` sections, one per setup), each measured with (a) `Connection: close` (a new
# client and server connection per request: new connections per second) and (b) keep-alive,
# both `wrk -t1 -cCONNS --latency`: req/s, p99 latency, and the proxy's CPU seconds
# (utime+stime from /proc/PID/stat) per 100k requests. Rounds alternate the proxies (the order
# flips every round). After every run the servers' access logs (`$remote_addr $connection`,
# buffered) are checked: every request of that run must have reached a server from the client's
# IP (10.10.1.2) with usesrc and from the proxy's IP (10.10.2.1) without, and the servers must
# have logged at least as many requests as wrk counted; otherwise the script stops. A
# `/whoami` request from a second client IP (10.10.1.3) is checked the same way before the runs.
#
# Usage (as root): compat-tests/bench/tproxy.sh [--runs N] [--duration S] [--conns C]
#   --runs      rounds: every setup and scenario once per proxy each (default 5)
#   --duration  seconds per wrk run (default 4)
#   --conns     wrk connections (default 50)
#   --scenarios "close ka"  which scenarios to run (default both)
#   --setups "u p"          u: usesrc clientip, p: no usesrc (default both)
#   --perf DIR    profile: `perf record -p PROXY` during every run, into DIR/KEY-rROUND.data
#   --strace DIR  syscall counts: `strace -c -f -p PROXY` during every run, into DIR/KEY-rROUND.txt
#                 (strace slows the proxy a lot: only the counts per request mean anything)
#
# Needs root, ip, nft, wrk, nginx, haproxy, taskset, rustc. Prints a Markdown report on stdout,
# progress on stderr. Its namespaces are named rhb<PID>-*; on exit (also on failure or ^C) it
# kills the processes it started, by PID, and deletes its namespaces (which removes every
# interface, rule and route with them).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

RUNS=5 DUR=4 CONNS=50 SCENARIOS="close ka" SETUPS="u p" TRACE= TRACE_DIR=
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --setups) SETUPS=$2; shift 2 ;;
    --perf) TRACE=perf TRACE_DIR=$2; shift 2 ;;
    --strace) TRACE=strace TRACE_DIR=$2; shift 2 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "SKIPPED (needs root: network namespaces, IP_TRANSPARENT)" >&2; exit 2; }
[ -z "$TRACE" ] || { mkdir -p "$TRACE_DIR"; TRACE_DIR=$(cd "$TRACE_DIR" && pwd); }
for t in ip nft wrk nginx haproxy taskset rustc $TRACE; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (proxy on CPU 0, load and servers on CPU 1)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 10000 ] || { echo "ulimit -n is $(ulimit -n), need 10000" >&2; exit 2; }
log() { echo "[tbench $(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Namespaces, processes, cleanup.
P=rhb$$-
NS_C=${P}c NS_LB=${P}lb NS_SW=${P}sw NS_S1=${P}s1 NS_S2=${P}s2
ALL_NS=("$NS_C" "$NS_LB" "$NS_SW" "$NS_S1" "$NS_S2")
CREATED_NS=()
PIDS=()
LAST_PID=
tmp=$(mktemp -d /tmp/rhaproxy-tbench.XXXXXX)
cleanup() {
  local p ns
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # Anything still inside our own namespaces was started by this script (its namespaces are
  # unique to it): a process left there would keep the namespace alive.
  for ns in "${CREATED_NS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# start_bg NAME NS CMD...: runs CMD in namespace NS in the background (`ip netns exec` and
# `taskset` exec, so $! is the real process); its PID in LAST_PID.
start_bg() {
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------------------------------------
log "building rhaproxy (release) and the bench helper"
cargo build --release -q
RH=$ROOT/target/release/rhaproxy
HA=$(command -v haproxy)
rustc -O --edition 2021 -o "$tmp/benchtool" compat-tests/bench/benchtool.rs
BT=$tmp/benchtool

log "building the topology (namespaces ${P}*)"
for ns in "${ALL_NS[@]}"; do
  ip netns add "$ns"
  CREATED_NS+=("$ns")
  in_ns "$ns" ip link set lo up
done
ip -n "$NS_LB" link add lb-c type veth peer name eth0 netns "$NS_C"
ip -n "$NS_LB" link add lb-s type veth peer name up0 netns "$NS_SW"
ip -n "$NS_SW" link add p-s1 type veth peer name eth0 netns "$NS_S1"
ip -n "$NS_SW" link add p-s2 type veth peer name eth0 netns "$NS_S2"
in_ns "$NS_SW" sh -ec '
  ip link add br0 type bridge
  if [ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    echo 0 >/proc/sys/net/bridge/bridge-nf-call-iptables
  fi
  for p in up0 p-s1 p-s2; do ip link set "$p" master br0; ip link set "$p" up; done
  ip link set br0 up'
in_ns "$NS_C" sh -ec '
  ip addr add 10.10.1.2/24 dev eth0
  ip addr add 10.10.1.3/24 dev eth0
  ip link set eth0 up
  ip route add default via 10.10.1.1
  sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1'
for s in 1 2; do
  ns=${P}s$s
  in_ns "$ns" sh -ec "
    ip addr add 10.10.2.$((s + 1))/24 dev eth0
    ip link set eth0 up
    ip route add default via 10.10.2.1   # replies to the client's IP go back through the proxy
    sysctl -qw net.core.somaxconn=4096"
done
in_ns "$NS_LB" sh -ec '
  ip addr add 10.10.1.1/24 dev lb-c
  ip addr add 10.10.2.1/24 dev lb-s
  ip link set lb-c up
  ip link set lb-s up
  sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=4096'
# The plumbing usesrc needs, exactly as shipped: fwmark rule + local route table, ip_forward
# (policy-routing.sh), and the socket-match rule that marks the servers' replies (nftables.conf).
in_ns "$NS_LB" sh samples/tproxy/policy-routing.sh up
in_ns "$NS_LB" nft -f samples/tproxy/nftables.conf
in_ns "$NS_LB" ip rule list >"$tmp/rules"
grep -q 'fwmark 0x1 lookup 100' "$tmp/rules" || { echo "policy rule missing:" >&2; cat "$tmp/rules" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# nginx on both servers: one process (no master) each, on CPU 1, own prefix; the access log
# holds `$remote_addr $connection` per request (buffered, flushed every second).
for s in 1 2; do
  d=$tmp/nginx$s
  mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 9000;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 8000; }
http {
    log_format peer '\$remote_addr \$connection';
    access_log $d/logs/access.log peer buffer=256k flush=1s;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 10.10.2.$((s + 1)):80 backlog=4096;
        location / { return 200 "hello from server $s\n"; }
        location = /whoami { return 200 "\$remote_addr\n"; }
    }
}
EOF
  start_bg "nginx$s" "${P}s$s" taskset -c 1 nginx -p "$d" -c "$d/nginx.conf"
done
for s in 1 2; do
  in_ns "${P}s$s" "$BT" wait "10.10.2.$((s + 1)):80" 5000 ||
    { echo "nginx $s did not start:" >&2; cat "$tmp/nginx$s.err" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------
# One config for both proxies but for the ports: listen `usesrc` (source 0.0.0.0 usesrc
# clientip) and listen `plain` (no source line), same two servers, roundrobin.
declare -A PORT_U=([rh]=80 [ha]=82) PORT_P=([rh]=81 [ha]=83)
declare -A EXE=([rh]=$RH [ha]=$HA) NAME=([rh]=rhaproxy [ha]=HAProxy) PID=()
for i in rh ha; do
  cat >"$tmp/$i.cfg" <<EOF
global
    nbthread 1
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

listen usesrc
    bind 10.10.1.1:${PORT_U[$i]}
    balance roundrobin
    source 0.0.0.0 usesrc clientip
    server s1 10.10.2.2:80
    server s2 10.10.2.3:80

listen plain
    bind 10.10.1.1:${PORT_P[$i]}
    balance roundrobin
    server s1 10.10.2.2:80
    server s2 10.10.2.3:80
EOF
  "${EXE[$i]}" -c -q -f "$tmp/$i.cfg" || { echo "${NAME[$i]} -c refused the config" >&2; exit 1; }
  start_bg "proxy-$i" "$NS_LB" taskset -c 0 "${EXE[$i]}" -db -f "$tmp/$i.cfg"
  PID[$i]=$LAST_PID
  for port in "${PORT_U[$i]}" "${PORT_P[$i]}"; do
    in_ns "$NS_C" "$BT" wait "10.10.1.1:$port" 5000 ||
      { echo "${NAME[$i]} did not listen on $port:" >&2; cat "$tmp/proxy-$i.err" >&2; exit 1; }
  done
done

# Before the runs: from a second client IP, /whoami must come back as that IP through usesrc
# and as the proxy's server-side IP without.
for i in rh ha; do
  a=$(in_ns "$NS_C" "$BT" whoami "10.10.1.1:${PORT_U[$i]}" 10.10.1.3 || true)
  b=$(in_ns "$NS_C" "$BT" whoami "10.10.1.1:${PORT_P[$i]}" 10.10.1.3 || true)
  if [ "$a" != 10.10.1.3 ] || [ "$b" != 10.10.2.1 ]; then
    echo "${NAME[$i]}: the servers saw '$a' through usesrc (want 10.10.1.3), '$b' without (want 10.10.2.1)" >&2
    exit 1
  fi
done
log "whoami check passed: servers see the client IP through usesrc, the proxy's IP without"

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
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
put() { echo "$2" >>"$tmp/res/$1"; } # put KEY VALUE (one line per round)
ACCESS=("$tmp/nginx1/logs/access.log" "$tmp/nginx2/logs/access.log")
clear_logs() { local f; for f in "${ACCESS[@]}"; do : >"$f"; done; }

# check_logs WANT_IP WRK_REQUESTS KEY: every logged request came from WANT_IP, and at least
# WRK_REQUESTS were logged; records server connections per 100 requests.
check_logs() {
  local want=$1 n=$2 key=$3 f got bad conns=0 c prev=-1 k
  # Wait until the servers' logs stop growing (nginx flushes its buffer every second): a
  # loaded proxy may still forward requests that were queued in its accept backlog when wrk
  # stopped, and they must be counted here, not in the next run.
  for k in $(seq 15); do
    sleep 1.2
    got=$(cat "${ACCESS[@]}" | wc -l)
    [ "$got" = "$prev" ] && break
    prev=$got
  done
  bad=$(cat "${ACCESS[@]}" | awk -v w="$want" '$1 != w' | sort | awk '{ print $1 }' | uniq -c | head -5)
  if [ -n "$bad" ] || [ "$got" -lt "$n" ]; then
    echo "address check failed for $key: want every request from $want, wrk counted $n, servers logged $got; other sources (count, address):" >&2
    echo "$bad" >&2
    exit 1
  fi
  for f in "${ACCESS[@]}"; do
    c=$(awk '{ print $2 }' "$f" | sort -u | wc -l); conns=$((conns + c))
  done
  put "$key.srvconn" "$(awk -v c="$conns" -v r="$got" 'BEGIN { printf "%.2f", r ? c * 100 / r : 0 }')"
  put "$key.logged" "$got"
  clear_logs
}

# one_run PROXY SETUP SCENARIO: SETUP u (usesrc) or p (plain), SCENARIO close or ka.
one_run() {
  local i=$1 su=$2 sc=$3 port want key c0 c1 out line req bytes dur p99 err st t
  if [ "$su" = u ]; then port=${PORT_U[$i]} want=10.10.1.2; else port=${PORT_P[$i]} want=10.10.2.1; fi
  key=$i.$su.$sc
  local hdr=()
  [ "$sc" = close ] && hdr=(-H "Connection: close")
  clear_logs
  local tp=
  case $TRACE in
    perf) perf record -q -p "${PID[$i]}" -o "$TRACE_DIR/$key-r$r.data" 2>"$tmp/trace.err" & tp=$! ;;
    strace) strace -c -f -p "${PID[$i]}" -o "$TRACE_DIR/$key-r$r.txt" 2>"$tmp/trace.err" & tp=$! ;;
  esac
  [ -z "$tp" ] || { PIDS+=("$tp"); sleep 0.5; }
  c0=$(cpu_ticks "${PID[$i]}")
  out=$(in_ns "$NS_C" taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$tmp/report.lua" \
    "${hdr[@]}" "http://10.10.1.1:$port/" 2>&1) || true
  c1=$(cpu_ticks "${PID[$i]}")
  if [ -n "$tp" ]; then
    kill -INT "$tp" 2>/dev/null || true; wait "$tp" 2>/dev/null || true
    local p keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$tp" ] || keep+=("$p"); done; PIDS=("${keep[@]}")
  fi
  line=$(grep '^BENCH ' <<<"$out" || true)
  [ -n "$line" ] || { echo "wrk failed ($key): $out" >&2; exit 1; }
  read -r _ req bytes dur p99 err st <<<"$line"
  t=$((c1 - c0))
  put "$key.rps" "$(awk -v r="$req" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  put "$key.p99" "$(awk -v p="$p99" 'BEGIN { printf "%.2f", p / 1000 }')"
  put "$key.cpu100k" "$(awk -v t="$t" -v k="$CLK" -v r="$req" 'BEGIN { printf "%.3f", r ? t / k * 100000 / r : 0 }')"
  put "$key.cpupct" "$(awk -v t="$t" -v k="$CLK" -v d="$dur" 'BEGIN { printf "%.0f", t / k / (d / 1e6) * 100 }')"
  put "$key.errors" "$err $st"
  check_logs "$want" "$req" "$key"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M UTC')
T0=$(date +%s)
log "warm-up"
for i in rh ha; do
  for port in "${PORT_U[$i]}" "${PORT_P[$i]}"; do
    in_ns "$NS_C" taskset -c 1 wrk -t1 -c"$CONNS" -d1s "http://10.10.1.1:$port/" >/dev/null 2>&1 || true
  done
done
sleep 1.3
clear_logs
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then order=(rh ha); else order=(ha rh); fi
  for sc in $SCENARIOS; do
    for su in $SETUPS; do
      for i in "${order[@]}"; do
        log "round $r/$RUNS: ${NAME[$i]} $([ "$su" = u ] && echo usesrc || echo plain) $sc"
        one_run "$i" "$su" "$sc"
      done
    done
  done
done
for i in rh ha; do
  kill -0 "${PID[$i]}" 2>/dev/null || { echo "${NAME[$i]} died during the runs:" >&2; cat "$tmp/proxy-$i.err" >&2; exit 1; }
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - T0))

# ---------------------------------------------------------------------------------------------
# Report.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }'; }
spread() { sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR > 1) printf " (%s–%s)", a, b }'; }
cell() { local f=$tmp/res/$1; printf '%s%s' "$(median <"$f")" "$(spread <"$f")"; }
# pr KEY_A KEY_B: median (min–max) of the per-round ratios A/B (line r = round r)
pr() {
  paste "$tmp/res/$1" "$tmp/res/$2" | awk '$2 > 0 { printf "%.2f\n", $1 / $2 }' >"$tmp/ratios"
  [ -s "$tmp/ratios" ] || { echo "n/a"; return; }
  printf '%s%s' "$(median <"$tmp/ratios")" "$(spread <"$tmp/ratios")"
}
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
declare -A SC_LABEL=([close]="\`Connection: close\` (new conn/s)" [ka]="keep-alive")
declare -A SU_LABEL=([u]="usesrc clientip" [p]="no usesrc")

echo "tproxy benchmark, $START: $(nproc) vCPU ($cpu_model), Linux $(uname -r), $(haproxy -v | head -1 | cut -d' ' -f1-3)."
echo "Proxy ns: both proxies (nbthread 1, \`mode http\`) on CPU 0; wrk -t1 -c$CONNS (client ns) and the two nginx"
echo "(server ns) on CPU 1. $RUNS rounds of ${DUR}s runs, proxy order flipped every round; cells: median (min–max)."
echo "Load average before/after: $LOAD0 / $LOAD1; wall time ${ELAPSED}s."
echo
echo "| scenario | setup | metric | rhaproxy | HAProxy | rhaproxy / HAProxy, per-round median (min–max) |"
echo "|---|---|---|---:|---:|---:|"
for sc in $SCENARIOS; do
  for su in $SETUPS; do
    for m in rps p99 cpu100k cpupct srvconn; do
      case $m in
        rps) ml="req/s" ;; p99) ml="p99 ms" ;; cpu100k) ml="proxy CPU s / 100k req" ;;
        cpupct) ml="proxy CPU %" ;; srvconn) ml="server conns / 100 req" ;;
      esac
      echo "| ${SC_LABEL[$sc]} | ${SU_LABEL[$su]} | $ml | $(cell "rh.$su.$sc.$m") | $(cell "ha.$su.$sc.$m") | $(pr "rh.$su.$sc.$m" "ha.$su.$sc.$m") |"
    done
  done
done
echo
[[ "$SETUPS" == *u* && "$SETUPS" == *p* ]] && echo "usesrc clientip / no usesrc, per-round median (min–max):

| scenario | metric | rhaproxy | HAProxy |
|---|---|---:|---:|" && for sc in $SCENARIOS; do
  for m in rps p99 cpu100k; do
    case $m in rps) ml="req/s" ;; p99) ml="p99" ;; cpu100k) ml="proxy CPU / req" ;; esac
    echo "| ${SC_LABEL[$sc]} | $ml | $(pr "rh.u.$sc.$m" "rh.p.$sc.$m") | $(pr "ha.u.$sc.$m" "ha.p.$sc.$m") |"
  done
done
echo
errs=""
for f in "$tmp"/res/*.errors; do
  e=$(awk '{ s += $1; t += $2 } END { if (s + t) printf "%d socket errors (connect, read, write, timeout), %d non-2xx", s, t }' "$f")
  [ -z "$e" ] || errs="$errs $(basename "$f" .errors): $e;"
done
echo "- wrk errors over all rounds:${errs:- none}"
echo "- Address check: after every run, every request the servers logged came from 10.10.1.2 (usesrc) or 10.10.2.1 (no usesrc), and the servers logged at least as many requests as wrk counted ($(cat "$tmp"/res/*.logged | awk '{ s += $1 } END { print s }') requests checked)."
