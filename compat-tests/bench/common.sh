# Sourced by the benchmarks.

# bench_setup NAME: a temporary directory in $tmp (removed on exit) and PIDS, the processes
# the benchmark starts: on exit, interrupt or termination it kills those (by PID, nothing
# else) and waits for them.
bench_setup() {
  tmp=$(mktemp -d "/tmp/rhaproxy-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}

# The nginx they proxy to, one process serving a 29-byte body.
# small_nginx_conf DIR PORT writes DIR/nginx.conf (with its logs and temp paths under DIR)
# for `nginx -p DIR -c DIR/nginx.conf`, listening on 127.0.0.1:PORT.
small_nginx_conf() {
  local dir=$1 port=$2
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / { return 200 "hello from the small backend\\n"; }
    }
}
NGINX
}

# The proxy config of the per-request benchmarks (per_request.sh, instructions.sh): one
# `mode http` listener, `nbthread 1`, one server.
# small_http_cfg FILE PORT SERVER_PORT [LINE] writes FILE; LINE (say, a `source` line) goes
# into the listener.
small_http_cfg() {
  local file=$1 port=$2 srv=$3 line=${4:-}
  cat >"$file" <<CFG
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
listen web
    bind 127.0.0.1:$port
${line:+$line
}    server s1 127.0.0.1:$srv
CFG
}
