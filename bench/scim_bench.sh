#!/usr/bin/env bash
# SCIM listener throughput with 100,000 users stored, next to nginx serving a
# static file of the same size as the SCIM answer, on the same machine in the
# same run:
#   1. GET /Users?filter=userName eq "…" (a different user each request), wrk,
#      64 connections, throughput and latency percentiles;
#   2. nginx (started here, temp config, free loopback port) serving a file of
#      the same size as one such answer, same wrk settings;
#      1 and 2 alternate three times; the median ratio is reported;
#   3. the GET of 1 again while bench/hostile_load.py holds 1,000 idle
#      keep-alive connections and 200 slow clients open on the same listener;
#   4. sustained POST /Users (a new user each request), 16 connections.
#
# The server measured is scim_test_server (tests/scim_server), not idsyncd. It
# serves idsyncd's SCIM code: the same httpd listener, ScimEndpoint (bearer
# token per source), ScimService and SQLite store (every write a
# synchronous = FULL commit). Not in the figure: TLS (it serves plain HTTP on
# loopback; idsyncd serves HTTPS when server.tls_cert is set), idsyncd's
# per-request metrics and reload lock, and the work a SCIM write sets off in
# idsyncd (a partial run: mapping, reconcile and the account's write, on other
# threads of the same machine); scim_test_server only keeps each change in
# memory. It runs THREADS workers of which RUNNING run handlers at once (16 and
# 4, as idsyncd on 2 cores; a write waiting for its commit is not counted).
#
# Usage: bench/scim_bench.sh [BUILD_DIR] [SECONDS]   (defaults: build, 20)
# BUILD_DIR defaults to the tree's build/; a relative one is taken from the
# current directory.
# Environment: USERS (100000), THREADS (server worker threads, 16), RUNNING (4),
#              CONNECTIONS (64), POST_CONNECTIONS (16), IDLE (1000), SLOW (200).
# Needs: wrk, nginx (nginx-light), curl. Prints a summary; bench/README.md
# records the numbers. Exits non-zero, naming the command, when a command
# fails, a server stops during the run, or a wrk run got any answer but 2xx or
# a connect, read or write error (its rate would count failures).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || { echo "scim_bench.sh: no build directory ${1:-$root/build}" >&2; exit 2; }
cd "$root"
seconds=${2:-20}
users=${USERS:-100000}
threads=${THREADS:-16}
running=${RUNNING:-4}
idle_connections=${IDLE:-1000}
slow_connections=${SLOW:-200}
connections=${CONNECTIONS:-64}
post_connections=${POST_CONNECTIONS:-16}
server=$build/tests/scim_server/scim_test_server
[ -x "$server" ] || { echo "scim_bench.sh: build $server first" >&2; exit 2; }
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "scim_bench.sh: $tool not installed" >&2; exit 2; }
done

work=$(mktemp -d /tmp/idsync-scim-bench.XXXXXX)
chmod 755 "$work"
server_pid=""
nginx_pid=""
hostile_pid=""
seed_dir=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  [ -n "$hostile_pid" ] && kill "$hostile_pid" 2>/dev/null && wait "$hostile_pid" 2>/dev/null
  [ -n "$seed_dir" ] && rm -rf "$seed_dir"
  rm -rf "$work"
}
trap cleanup EXIT
fail() {  # $1: message; the rest: files to show first
  local message=$1
  shift
  for file in "$@"; do [ -f "$file" ] && cat "$file" >&2; done
  echo "scim_bench.sh: $message" >&2
  exit 1
}

SCIM_TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SCIM_TOKEN
export SCIM_USERS=$users

# --- the SCIM server, seeded through the service -------------------------------
# Seeding writes every user through the service and the store; it runs on tmpfs
# (each durable write is an fsync), then the server starts over a copy of that
# store on disk, so the runs below measure the real, fsync-per-write store.
seed_dir=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo /tmp )/idsync-scim-seed.XXXXXX")
echo "seeding $users users ..." >&2
seed_start=$(date +%s.%N)
"$server" --store-dir "$seed_dir" --source bench --seed "$users" --seed-only 2>"$work/seed.log" ||
  fail "$server --store-dir $seed_dir --seed $users --seed-only exited $?" "$work/seed.log"
seed_end=$(date +%s.%N)
cat "$work/seed.log" >&2
mkdir "$work/store"
cp "$seed_dir"/state.db* "$work/store/"
rm -rf "$seed_dir"
seed_dir=""

load_start=$(date +%s.%N)
"$server" --port-file "$work/port" --token "$SCIM_TOKEN" --source bench \
  --threads "$threads" --running "$running" --store-dir "$work/store" 2>"$work/server.log" &
server_pid=$!
while [ ! -s "$work/port" ]; do
  kill -0 "$server_pid" 2>/dev/null || fail "$server exited during start-up" "$work/server.log"
  sleep 0.1
done
load_end=$(date +%s.%N)
scim_port=$(cat "$work/port")

sample_path='/scim/v2/Users?filter=userName%20eq%20%22seed000042%40bench.test%22'
curl -sf -H "Authorization: Bearer $SCIM_TOKEN" "http://127.0.0.1:$scim_port$sample_path" \
  >"$work/sample.json" || fail "GET $sample_path from $server failed" "$work/server.log"
answer_bytes=$(wc -c <"$work/sample.json")
grep -q '"totalResults":1' "$work/sample.json" ||
  fail "unexpected answer to GET $sample_path: $(cat "$work/sample.json")"

# --- nginx on a free port, serving a file of the same size -----------------------
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/html" "$work/nginx/logs" "$work/nginx/tmp"
chmod -R 755 "$work/nginx"
head -c "$answer_bytes" /dev/zero | tr '\0' 'x' >"$work/nginx/html/answer.json"
chmod 644 "$work/nginx/html/answer.json"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root root;"
cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/scim+json;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  keepalive_requests 1000000;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16;
  server {
    # reuseport spreads connections over both workers (without it one worker
    # tends to take them all on a 2-core machine).
    listen 127.0.0.1:$nginx_port reuseport;
    root $work/nginx/html;
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/logs/stderr" &
nginx_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$nginx_port/answer.json" -o /dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null ||
    fail "nginx exited during start-up" "$work/nginx/logs/stderr" "$work/nginx/logs/error.log"
  sleep 0.1
done
nginx_bytes=$(curl -sf "http://127.0.0.1:$nginx_port/answer.json" | wc -c) ||
  fail "nginx did not serve http://127.0.0.1:$nginx_port/answer.json" "$work/nginx/logs/error.log"

# --- wrk scripts ---------------------------------------------------------------
cat >"$work/get.lua" <<'LUA'
-- A different seeded user on each request.
local token = os.getenv("SCIM_TOKEN")
local n_users = tonumber(os.getenv("SCIM_USERS"))
local headers = { ["Authorization"] = "Bearer " .. token }
function setup(thread) thread:set("seed", math.random(1, 1000000)) end
function init(args) math.randomseed(seed or os.time()) end
request = function()
  local n = math.random(1, n_users)
  local path = string.format(
    "/scim/v2/Users?filter=userName%%20eq%%20%%22seed%06d%%40bench.test%%22", n)
  return wrk.format("GET", path, headers)
end
LUA
cat >"$work/post.lua" <<'LUA'
-- A new user on each request; names never repeat across threads.
local token = os.getenv("SCIM_TOKEN")
local headers = { ["Authorization"] = "Bearer " .. token,
                  ["Content-Type"] = "application/scim+json" }
local counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
request = function()
  counter = counter + 1
  local name = string.format("post-%d-%d@bench.test", tid, counter)
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' ..
    name .. '","active":true,"emails":[{"value":"' .. name .. '","type":"work","primary":true}]}'
  return wrk.format("POST", "/scim/v2/Users", headers, body)
end
LUA

rate() { awk '/^Requests\/sec/ {print $2}' "$work/$1.txt"; }
pct() { awk -v p="$2%" '$1 == p {print $2}' "$work/$1.txt"; }
# Answers other than 2xx/3xx, and socket errors by kind, as wrk reports them.
non2xx() { awk '/Non-2xx or 3xx responses/ {n += $NF} END {print n + 0}' "$work/$1.txt"; }
socket_errors() {  # $2: connect, read, write or timeout
  awk -v kind="$2" '/Socket errors:/ { for (i = 1; i < NF; i++) if ($i == kind) { v = $(i + 1); sub(",", "", v); n += v } }
    END { print n + 0 }' "$work/$1.txt"
}
errors() {
  echo "$(non2xx "$1") non-2xx, socket errors: connect $(socket_errors "$1" connect)," \
    "read $(socket_errors "$1" read), write $(socket_errors "$1" write), timeout $(socket_errors "$1" timeout)"
}

run_wrk() {  # $1: label, $2: pid of the server under test, rest: wrk arguments
  local label=$1 pid=$2 rc=0
  shift 2
  echo "== $label: wrk $*" >&2
  wrk "$@" >"$work/$label.txt" 2>&1 || rc=$?
  cat "$work/$label.txt" >&2
  [ "$rc" = 0 ] || fail "$label: wrk $* exited $rc"
  kill -0 "$pid" 2>/dev/null || fail "$label: the server under test (pid $pid) stopped during the run"
  [ -n "$(rate "$label")" ] || fail "$label: wrk $* printed no Requests/sec"
  local bad=$(($(non2xx "$label") + $(socket_errors "$label" connect) + $(socket_errors "$label" read) +
    $(socket_errors "$label" write)))
  [ "$bad" = 0 ] || fail "$label: wrk $*: $(errors "$label"); the rate would count failed requests"
}

# Three rounds of the SCIM GET and nginx side by side: the machine is noisy,
# so the ratio is taken per round and the median reported.
for round in 1 2 3; do
  run_wrk "scim_get_$round" "$server_pid" -t2 -c"$connections" -d"${seconds}s" --latency \
    -s "$work/get.lua" "http://127.0.0.1:$scim_port"
  run_wrk "nginx_static_$round" "$nginx_pid" -t2 -c"$connections" -d"${seconds}s" --latency \
    "http://127.0.0.1:$nginx_port/answer.json"
done

# The same GET while 1,000 idle keep-alive connections and 200 slow clients
# (a request head one byte per second) are open on the same listener.
python3 "$root/bench/hostile_load.py" "$scim_port" --idle "$idle_connections" \
  --slow "$slow_connections" --ready "$work/hostile.ready" 2>"$work/hostile.log" &
hostile_pid=$!
for _ in $(seq 600); do
  [ -s "$work/hostile.ready" ] && break
  kill -0 "$hostile_pid" 2>/dev/null || fail "hostile_load.py exited" "$work/hostile.log"
  sleep 0.1
done
[ -s "$work/hostile.ready" ] || fail "hostile_load.py did not open its connections in 60 s" "$work/hostile.log"
run_wrk scim_get_loaded "$server_pid" -t2 -c"$connections" -d"${seconds}s" --latency \
  -s "$work/get.lua" "http://127.0.0.1:$scim_port"
kill "$hostile_pid" 2>/dev/null && wait "$hostile_pid" 2>/dev/null || true
hostile_pid=""
cat "$work/hostile.log" >&2

run_wrk scim_post "$server_pid" -t2 -c"$post_connections" -d"${seconds}s" --latency -s "$work/post.lua" \
  "http://127.0.0.1:$scim_port"

total=$(curl -sf -H "Authorization: Bearer $SCIM_TOKEN" \
  "http://127.0.0.1:$scim_port/scim/v2/Users?count=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])') ||
  fail "GET /scim/v2/Users?count=0 from $server failed" "$work/server.log"
server_rss=$(awk '/VmHWM/ {print $2, $3}' "/proc/$server_pid/status") ||
  fail "cannot read the peak RSS of $server (pid $server_pid)"

ratios=""
for round in 1 2 3; do
  ratios="$ratios $(python3 -c "print(f'{$(rate "scim_get_$round") / $(rate "nginx_static_$round"):.2f}')")"
done
median_ratio=$(python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.2f}')" $ratios)
get_median=$(python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.0f}')" \
  "$(rate scim_get_1)" "$(rate scim_get_2)" "$(rate scim_get_3)")
loaded_rate=$(rate scim_get_loaded)
loaded_share=$(python3 -c "print(f'{$loaded_rate / $get_median:.2f}')")
cat <<SUMMARY

SCIM benchmark: scim_test_server (idsyncd's SCIM code, plain HTTP, no partial runs), $(nproc) cores, server threads $threads, ${seconds} s per run
$users users seeded through the service in $(python3 -c "print(f'{$seed_end - $seed_start:.1f}')") s (tmpfs); server start over them (loading the store): $(python3 -c "print(f'{$load_end - $load_start:.1f}')") s
answer size: $answer_bytes bytes (nginx file: $nginx_bytes bytes)
$(for round in 1 2 3; do
  echo "round $round: GET filter userName eq, $connections conns: $(rate "scim_get_$round") req/s, p50 $(pct "scim_get_$round" 50) p99 $(pct "scim_get_$round" 99); nginx static: $(rate "nginx_static_$round") req/s, p50 $(pct "nginx_static_$round" 50) p99 $(pct "nginx_static_$round" 99)"
done)
SCIM GET / nginx per round:$ratios; median $median_ratio
GET with $idle_connections idle + $slow_connections slow connections open: $loaded_rate req/s, p50 $(pct scim_get_loaded 50) p99 $(pct scim_get_loaded 99), $(errors scim_get_loaded); $loaded_share of the median rate without them ($get_median req/s)
POST /Users, $post_connections conns: $(rate scim_post) req/s, p50 $(pct scim_post 50) p99 $(pct scim_post 99), $(errors scim_post)
users stored at the end: $total; server peak RSS: $server_rss
SUMMARY
