#!/usr/bin/env bash
# Benchmark (not a test): `-c` on a generated config of 10,000 proxies, rhaproxy against
# `haproxy -c`, same file, same machine, alternating runs. Prints the median wall time of each
# and the ratio. Usage: compat-tests/bench/check_10k.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-7}
cargo build --release -q
cfg=$(mktemp --suffix=.cfg)
trap 'rm -f "$cfg"' EXIT
{
  printf 'global\n    maxconn 50000\n    log 127.0.0.1:514 local0\n\n'
  printf 'defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n'
  for i in $(seq 0 4999); do
    p=$((20000 + i % 40000))
    printf 'frontend fe%d\n    bind 127.0.0.1:%d\n    default_backend be%d\n\n' "$i" "$p" "$i"
    printf 'backend be%d\n    balance roundrobin\n    server s1 127.0.0.1:%d check\n    server s2 127.0.0.1:%d check weight 2\n\n' "$i" "$((p + 1))" "$((p + 2))"
  done
} > "$cfg"
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
r=(); h=()
for _ in $(seq "$runs"); do
  r+=("$(ms ./target/release/rhaproxy -c -f "$cfg")")
  h+=("$(ms haproxy -c -f "$cfg")")
done
rm=$(printf '%s\n' "${r[@]}" | median)
hm=$(printf '%s\n' "${h[@]}" | median)
echo "proxies: 10000 ($(wc -l < "$cfg") lines), runs: $runs"
echo "rhaproxy -c median: ${rm} ms"
echo "haproxy  -c median: ${hm} ms"
awk -v r="$rm" -v h="$hm" 'BEGIN { printf "ratio haproxy/rhaproxy: %.2fx\n", h / (r > 0 ? r : 1) }'
