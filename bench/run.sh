#!/usr/bin/env bash
# bench/run.sh: fedicache against Mastodon's documented nginx front for object storage
# (proxy_cache, proxy_cache_lock), on the same bucket, the same old volume and the same machine.
#
# Run it from the repository root:   bench/run.sh
#
# It installs what is missing (nginx and wrk with apt-get, versitygw with go install), builds
# fedicache and the helpers in bench/, starts a real S3 server (versitygw, which checks
# signatures) behind a counting proxy, fills a bucket and an old volume with a seeded,
# Mastodon-shaped tree, then measures both servers one after the other on each case (wrk, and
# bench/load for what wrk cannot do) and prints one table with PASS/MISS per target, also
# written to bench/results-latest.md (BENCH_RESULTS moves it). Per case and server the table
# has requests/s, MB/s, latency, the server's CPU time per request (its processes' user and
# system time over the load), the object GETs and bytes the bucket sent, and peak RSS.
# Everything it starts is stopped at the end, Ctrl-C included; its work directory is removed
# unless BENCH_KEEP=1.
#
# Cases: a. hot small objects (memory hits)   b. one video (disk hits)   c. cold spread
#   d. ranges into a cold video   e. many clients at once on one cold key (image, then video)
#   f. one huge object, cold   g. seek-and-play: 4 viewers seek into a cold 60 MB video at
#   once (first MiB, middle MiB, last MiB, first 8 MiB), then 2 players read all of it.
#
# Settings (environment; defaults in brackets):
#   BENCH_CASES [a b c d e f g]  the cases to run, by letter, e.g. BENCH_CASES="c g" to
#                          rerun two quickly (targets of cases not run say SKIP)
#   BENCH_DURATION [10s]   BENCH_CONNECTIONS [64]   BENCH_THREADS [2]   each wrk run
#   BENCH_ROUNDS [3]       rounds of each case; the table shows the median one
#   BENCH_SEED [1]         BENCH_HOT [200]   BENCH_SMALL [12000]   BENCH_ORIGINALS [400]
#   BENCH_BIG_BYTES [2147483648]  the huge object of case f (0 skips the case)
#   BENCH_MEMORY [256MiB]  fedicache's memory tier   BENCH_DISK [10GiB] both disk caches
#   BENCH_RANGE_BYTES [1048576]  size of each range of case d
#   BENCH_STORM_CLIENTS [100]    clients of case e
#   BENCH_DIR [$TMPDIR or /tmp]  where the work directory is made; every run's caches stay
#                                there until the end (case f: twice BENCH_ROUNDS times
#                                BENCH_BIG_BYTES), unless free space runs short
#   BENCH_KEEP [0]               1 keeps the work directory (logs, configurations, data)
#   BENCH_RESULTS [bench/results-latest.md]
#   BENCH_PROFILE []             a directory: a CPU profile of fedicache over each of its loads
#                                goes there as LOAD-SERVER-ROUND.pprof (go tool pprof -top FILE)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
SEED=${BENCH_SEED:-1}
HOT=${BENCH_HOT:-200}
SMALL=${BENCH_SMALL:-12000}
ORIGINALS=${BENCH_ORIGINALS:-400}
ROUNDS=${BENCH_ROUNDS:-3}
BIG_BYTES=${BENCH_BIG_BYTES:-2147483648}
MEMORY=${BENCH_MEMORY:-256MiB}
DISK=${BENCH_DISK:-10GiB}
RANGE_BYTES=${BENCH_RANGE_BYTES:-1048576}
STORM_CLIENTS=${BENCH_STORM_CLIENTS:-100}
RESULTS=${BENCH_RESULTS:-$REPO/bench/results-latest.md}
PROFILE=${BENCH_PROFILE:-}
BUCKET=mastodon-media
VERSITYGW_VERSION=v1.8.0

# bytes SIZE: SIZE ("256MiB", "10GiB", "1048576") in bytes.
bytes() {
  local n=${1%%[!0-9]*} unit=${1##*[0-9]}
  case $unit in
    "" | B) echo "$n" ;;
    KiB) echo $((n << 10)) ;;
    MiB) echo $((n << 20)) ;;
    GiB) echo $((n << 30)) ;;
    *) die "size $1: use a number of bytes or KiB, MiB, GiB" ;;
  esac
}
MEMORY_BYTES=$(bytes "$MEMORY")
DISK_BYTES=$(bytes "$DISK")

# The cases to run, in this order, from BENCH_CASES's letters.
ALL_CASES=(hot disk cold range storm_image storm_video big seek)
declare -A LETTER=([hot]=a [disk]=b [cold]=c [range]=d [storm_image]=e [storm_video]=e [big]=f [seek]=g)
SELECTED=" ${BENCH_CASES:-a b c d e f g} "
SELECTED=${SELECTED//,/ }
for letter in $SELECTED; do
  case $letter in [a-g]) ;; *) die "BENCH_CASES: no case \"$letter\" (use letters a to g)" ;; esac
done
CASES=()
for c in "${ALL_CASES[@]}"; do
  [[ $SELECTED == *" ${LETTER[$c]} "* ]] || continue
  if [ "$c" = big ] && [ "$BIG_BYTES" -eq 0 ]; then
    log "case f skipped: BENCH_BIG_BYTES=0"
    continue
  fi
  CASES+=("$c")
done
[ ${#CASES[@]} -gt 0 ] || die "BENCH_CASES: no case to run"

# ran CASE: true when CASE is one of the cases run.
ran() { [[ " ${CASES[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
# Tools: install what is missing.

command -v go >/dev/null || die "go is needed (the version in go.mod)"
for tool in curl awk ps; do command -v "$tool" >/dev/null || die "$tool is needed"; done
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  apt_install nginx-light || apt_install nginx
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
command -v wrk >/dev/null || apt_install wrk
install_versitygw "$VERSITYGW_VERSION"

# ---------------------------------------------------------------------------------------------
# Work directory and the processes started: all stopped and removed on exit, Ctrl-C included.

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/fedicache-bench.XXXXXX")
mkdir -p "$WORK"/{bin,logs,keys,volume,gw,nginx,fc}
declare -A PIDS=() # name -> pid of each process this script started and has not stopped

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_http NAME URL: wait up to 30 s until URL answers 2xx, while NAME still runs.
wait_http() {
  local i
  for i in $(seq 300); do
    curl -fso /dev/null "$2" && return 0
    kill -0 "${PIDS[$1]}" 2>/dev/null || break
    [ "$i" -lt 300 ] && sleep 0.1
  done
  tail -n 20 "$WORK/logs/$1.log" >&2
  die "$1 did not come up at $2 (log above)"
}

# free_port: a TCP port on 127.0.0.1 nothing listens on, below the ephemeral range.
# peak_mib PID: the peak resident memory (VmHWM) of PID and of its children, in MiB.
# Each server is started afresh for each run, so this is the peak of that run.
peak_mib() {
  local pid total=0 kib
  for pid in "$1" $(ps -o pid= --ppid "$1"); do
    kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kib:-0}))
  done
  awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

# ---------------------------------------------------------------------------------------------
# Build, start the bucket, fill it.

log "building fedicache and the helpers"
go build -trimpath -o "$WORK/fedicache" ./cmd/fedicache
for helper in gen countproxy load; do
  go build -trimpath -o "$WORK/bin/$helper" "./bench/$helper"
done

GW_PORT=$(free_port)
COUNT_PORT=$(free_port)
NGINX_PORT=$(free_port)
FC_PORT=$(free_port)
FC_ADMIN_PORT=$(free_port)
COUNTS=http://127.0.0.1:$COUNT_PORT/counts

ACCESS_KEY=bench
SECRET_KEY=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
start_counted_bucket "$GW_PORT" "$COUNT_PORT" "$ACCESS_KEY" "$SECRET_KEY"

log "generating the media tree (seed $SEED) and uploading the bucket's share"
AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY \
  run gen "$WORK/bin/gen" -endpoint "http://127.0.0.1:$GW_PORT" -bucket "$BUCKET" -seed "$SEED" \
  -volume "$WORK/volume" -keys "$WORK/keys" -hot "$HOT" -small "$SMALL" -originals "$ORIGINALS" \
  -big-bytes "$(if ran big; then echo "$BIG_BYTES"; else echo 0; fi)"
# shellcheck source=/dev/null
. "$WORK/keys/keys.env"
log "$TREE_SUMMARY"
log "bucket checks: unsigned GET $CHECK_ANON_GET, unsigned GET of a missing key $CHECK_ANON_MISSING, wrong signature $CHECK_BAD_SIGNATURE"

# ---------------------------------------------------------------------------------------------
# The two servers. Each case starts them afresh with an empty cache.
#
# Each run gets cache directories of its own (nginx's proxy_cache and temporary files in
# nginx/run.N, fedicache's disk tier in fc/disk.N, N counting the runs), and those of earlier
# runs are left in place until the end, removed with the work directory. Removing them just
# before a server starts would make it pay for them: ext4 skips inodes freed moments ago when it
# allocates one (recently_deleted), reading their inode table blocks, which inflates the next
# run's cold-miss CPU time for either server. Only when the work directory's file system has
# less free space than a run may need (the disk cache's size, BENCH_DISK, and 1 GiB more) are
# they removed before a start, which the log says.
RUN=0
RUN_DIRS=() # the cache directories of the runs started so far
RESERVE_BYTES=$((DISK_BYTES + (1 << 30)))

# nginx: Mastodon's documented front for object storage, as is: proxy_cache with a keys zone
# and max_size (Mastodon's nginx.conf: levels=1:2 keys_zone=CACHE:10m inactive=7d), 48 h for
# 200, stale on errors, cache lock, anonymous reads (Authorization cleared), x-amz-* and
# Set-Cookie hidden, a year of browser caching, CORS, nosniff, the CSP and X-Cache-Status. The
# old volume answers what the bucket does not have (404), as fedicache's fallback does. Not
# tuned: no access log (fedicache logs no request either), worker_processes auto.
#
# write_nginx_conf DIR: that configuration, with the cache and the temporary files in DIR.
write_nginx_conf() {
  local d=$WORK/nginx r=$1 user_line=""
  [ "$(id -u)" -ne 0 ] || user_line="user $(id -un) $(id -gn);"
  mkdir -p "$r/tmp"
  cat >"$d/nginx.conf" <<EOF
$user_line
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  types {
    image/jpeg jpg jpeg; image/png png; image/gif gif; image/webp webp;
    video/mp4 mp4; audio/mpeg mp3;
  }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  access_log off;
  server_tokens off;
  client_body_temp_path $r/tmp/body;
  proxy_temp_path $r/tmp/proxy;
  fastcgi_temp_path $r/tmp/fastcgi;
  uwsgi_temp_path $r/tmp/uwsgi;
  scgi_temp_path $r/tmp/scgi;
  proxy_cache_path $r/cache levels=1:2 keys_zone=CACHE:10m inactive=7d max_size=$DISK_BYTES;

  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_timeout 30;

    # The bucket, path style, through the counting proxy (an IP address: no resolver needed).
    set \$s3_backend 'http://127.0.0.1:$COUNT_PORT/$BUCKET';

    location / {
      limit_except GET {
        deny all;
      }
      proxy_set_header Host 127.0.0.1:$COUNT_PORT;
      proxy_set_header Connection '';
      proxy_set_header Authorization '';
      proxy_hide_header Set-Cookie;
      proxy_hide_header 'Access-Control-Allow-Origin';
      proxy_hide_header 'Access-Control-Allow-Methods';
      proxy_hide_header 'Access-Control-Allow-Headers';
      proxy_hide_header x-amz-id-2;
      proxy_hide_header x-amz-request-id;
      proxy_hide_header x-amz-meta-server-side-encryption;
      proxy_hide_header x-amz-server-side-encryption;
      proxy_hide_header x-amz-bucket-region;
      proxy_hide_header x-amzn-requestid;
      proxy_hide_header x-amz-storage-class; # not in the recipe; versitygw sends it
      proxy_ignore_headers Set-Cookie;
      proxy_pass \$s3_backend\$uri;

      # The old volume for what the bucket lacks (the documented recipe has no fallback).
      proxy_intercept_errors on;
      error_page 404 = @volume;

      proxy_cache CACHE;
      proxy_cache_valid 200 48h;
      proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
      proxy_cache_lock on;

      expires 1y;
      add_header Cache-Control public;
      add_header 'Access-Control-Allow-Origin' '*';
      add_header X-Cache-Status \$upstream_cache_status;
      add_header X-Content-Type-Options nosniff;
      add_header Content-Security-Policy "default-src 'none'; form-action 'none'";
    }

    location @volume {
      root $WORK/volume;
      try_files \$uri =404;
      expires 1y;
      add_header Cache-Control public;
      add_header 'Access-Control-Allow-Origin' '*';
      add_header X-Content-Type-Options nosniff;
      add_header Content-Security-Policy "default-src 'none'; form-action 'none'";
    }
  }
}
EOF
}

# write_fedicache_conf DIR: fedicache's configuration, with its disk tier in DIR.
write_fedicache_conf() {
  cat >"$WORK/fc/config.yaml" <<EOF
listen: 127.0.0.1:$FC_PORT
admin_listen: 127.0.0.1:$FC_ADMIN_PORT
s3:
  endpoint: http://127.0.0.1:$COUNT_PORT
  region: us-east-1
  bucket: $BUCKET
  force_path_style: true
  access_key_id: $ACCESS_KEY
  secret_access_key: $SECRET_KEY
fallback:
  dir: $WORK/volume
cache:
  memory:
    max_bytes: $MEMORY_BYTES
  disk:
    dir: $1
    max_bytes: $DISK_BYTES
log:
  level: warn
EOF
}

write_nginx_conf "$WORK/nginx/run.0"
RUN_DIRS+=("$WORK/nginx/run.0")
"$NGINX" -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" 2>"$WORK/logs/nginx-t.log" ||
  { cat "$WORK/logs/nginx-t.log" >&2; die "nginx rejected its configuration"; }

declare -A BASE=([nginx]=http://127.0.0.1:$NGINX_PORT [fedicache]=http://127.0.0.1:$FC_PORT)

# make_room: remove the caches of earlier runs when the work directory's file system has less
# than RESERVE_BYTES free (see RUN_DIRS).
make_room() {
  local free
  free=$(free_bytes "$WORK")
  [ "${#RUN_DIRS[@]}" -gt 0 ] && ! ge "$free" "$RESERVE_BYTES" || return 0
  log "$(mib "$free") free in the work directory, under $(mib "$RESERVE_BYTES"): removing the caches of ${#RUN_DIRS[@]} earlier run$([ "${#RUN_DIRS[@]}" -eq 1 ] || echo s) (the next run's cold misses may cost more CPU)"
  rm -rf "${RUN_DIRS[@]}"
  RUN_DIRS=()
}

# start_fresh SERVER: start SERVER with an empty cache, in directories of its own.
start_fresh() {
  local dir
  make_room
  RUN=$((RUN + 1))
  case $1 in
    nginx)
      dir=$WORK/nginx/run.$RUN
      RUN_DIRS+=("$dir")
      write_nginx_conf "$dir"
      start nginx "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
      wait_port nginx "$NGINX_PORT"
      ;;
    fedicache)
      dir=$WORK/fc/disk.$RUN
      RUN_DIRS+=("$dir")
      write_fedicache_conf "$dir"
      start fedicache "$WORK/fedicache" serve --config "$WORK/fc/config.yaml"
      wait_http fedicache "http://127.0.0.1:$FC_ADMIN_PORT/readyz"
      ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Measuring.

# counts_reset: read the bucket GET counts by path and start counting again.
counts_reset() { curl -fs "$COUNTS?reset=1"; }

# bucket_tally COUNTS [PATH]: "GETS MB OTHER BYTES": the object GETs in COUNTS (of PATH only,
# when given), the megabytes of their answers, the other GETs (of subresources such as ?acl),
# and the bytes of the object GETs' answers.
bucket_tally() {
  awk -v b="/$BUCKET/" -v p="${2:+/$BUCKET$2}" '
    {
      path = $3
      subresource = sub(/\?.*/, "", path)
      if (p == "" ? index(path, b) == 1 && length(path) > length(b) : path == p) {
        if (subresource) other += $1; else { n += $1; bytes += $2 }
      }
    }
    END { printf "%d %.1f %d %.0f\n", n, bytes / 1e6, other, bytes }' <<<"$1"
}

# cache_status SERVER PATH: what the server says of its cache for PATH (one more GET).
cache_status() {
  curl -s -o /dev/null -D - "${BASE[$1]}$2" | tr -d '\r' |
    awk -F': ' 'tolower($1) ~ /^x-cache(-status|-tier)?$/ { s = s (s ? " " : "") $2 } END { print s }'
}

# warm SERVER FILE [ROUNDS]: GET every path in FILE through SERVER, ROUNDS times (default 2).
warm() {
  local cfg=$WORK/warm.curl i
  : >"$cfg"
  for i in $(seq "${3:-2}"); do
    awk -v b="${BASE[$1]}" '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", b, $0 }' "$2" >>"$cfg"
  done
  curl -s -K "$cfg"
}

# wait_hit SERVER PATH: wait up to 10 s until SERVER answers PATH from its cache.
wait_hit() {
  local i status
  for i in $(seq 100); do
    status=$(cache_status "$1" "$2")
    case $status in HIT*) break ;; esac
    [ "$i" -lt 100 ] && sleep 0.1
  done
  echo "$status"
}

declare -A M=() # the last measurement: requests bytes seconds p50_ms p99_ms errors cpu_s

# cpu_mark: start counting the CPU time of SERVER (the server measured) and its children.
# cpu_used: the CPU seconds (user + system) they have used since cpu_mark.
# With BENCH_PROFILE, cpu_mark also starts a CPU profile of fedicache (from its admin listener,
# for BENCH_DURATION: the length of a wrk run or a walk) and profile_wait waits for it.
CLK_TCK=$(getconf CLK_TCK)
PROFILING=""
cpu_mark() {
  CPU_MARK=$(cpu_ticks "${PIDS[$SERVER]}")
  if [ -n "$PROFILE" ] && [ "$SERVER" = fedicache ]; then
    mkdir -p "$PROFILE"
    curl -fs -o "$PROFILE/$1-$ROUND.pprof" \
      "http://127.0.0.1:$FC_ADMIN_PORT/debug/pprof/profile?seconds=${DURATION%s}" &
    PROFILING=$!
  fi
}
cpu_used() {
  awk -v a="$CPU_MARK" -v b="$(cpu_ticks "${PIDS[$SERVER]}")" -v hz="$CLK_TCK" \
    'BEGIN { printf "%.6f", (b - a) / hz }'
}
profile_wait() {
  [ -n "$PROFILING" ] || return 0
  wait "$PROFILING" || log "no CPU profile of fedicache for this load"
  PROFILING=""
}

# parse_result LINE: the key=value pairs of a RESULT line, into R.
declare -A R=()
# load_wrk NAME SERVER MEDIA.LUA-ARGS...: one wrk run against SERVER; its output in logs/.
load_wrk() {
  local out=$WORK/logs/wrk-$1.txt cpu
  cpu_mark "$1"
  run wrk wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --timeout 30s --latency \
    -s "$REPO/bench/lua/media.lua" "${BASE[$2]}" -- "$THREADS" "${@:3}" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed"; }
  cpu=$(cpu_used)
  profile_wait
  parse_result "$(grep '^RESULT ' "$out")"
  M=([requests]=${R[requests]} [bytes]=${R[bytes]} [cpu_s]=$cpu
    [seconds]=$(awk -v u="${R[duration_us]}" 'BEGIN { print u / 1e6 }')
    [p50_ms]=$(awk -v u="${R[p50_us]}" 'BEGIN { print u / 1000 }')
    [p99_ms]=$(awk -v u="${R[p99_us]}" 'BEGIN { print u / 1000 }')
    [errors]=$((R[err_connect] + R[err_read] + R[err_write] + R[err_status] + R[err_timeout])))
}

# load_go NAME ARGS...: one run of bench/load (storm, walk or seek); its output in logs/.
load_go() {
  local out=$WORK/logs/load-$1.txt cpu
  cpu_mark "$1"
  run load "$WORK/bin/load" "${@:2}" >"$out" 2>&1 || { cat "$out" >&2; die "load $2 failed"; }
  cpu=$(cpu_used)
  profile_wait
  parse_result "$(grep '^RESULT ' "$out")"
  M=([requests]=${R[requests]} [bytes]=${R[bytes]} [cpu_s]=$cpu
    [seconds]=$(awk -v u="${R[duration_us]}" 'BEGIN { print u / 1e6 }')
    [p50_ms]=$(awk -v u="${R[p50_us]}" 'BEGIN { print u / 1000 }')
    [p99_ms]=$(awk -v u="${R[p99_us]}" 'BEGIN { print u / 1000 }')
    [errors]=${R[errors]})
}

# load_storm NAME SERVER PATH: STORM_CLIENTS clients GET PATH at the same instant.
load_storm() {
  load_go "$1" storm -n "$STORM_CLIENTS" -url "${BASE[$2]}$3"
  NOTE=$(awk -v a="${R[ttfb_p50_us]}" -v b="${R[ttfb_p99_us]}" -v c="${R[max_us]}" \
    'BEGIN { printf "first byte p50 %.1f ms, p99 %.1f ms; last answer %.0f ms", a / 1000, b / 1000, c / 1000 }')
}

# load_one SERVER PATH SIZE: one GET of PATH with curl.
load_one() {
  local code size secs cpu
  cpu_mark "one-$1"
  run curl curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' "${BASE[$1]}$2" >"$WORK/logs/curl.txt"
  cpu=$(cpu_used)
  profile_wait
  read -r code size secs <"$WORK/logs/curl.txt"
  M=([requests]=1 [bytes]=$size [seconds]=$secs [cpu_s]=$cpu
    [p50_ms]=$(awk -v s="$secs" 'BEGIN { print s * 1000 }')
    [p99_ms]=$(awk -v s="$secs" 'BEGIN { print s * 1000 }')
    [errors]=$([ "$code" = 200 ] && [ "$size" = "$3" ] && echo 0 || echo 1))
}

# The cases. Each runs against one freshly started server and fills M and NOTE.
case_hot() {
  warm "$1" "$WORK/keys/hot.txt"
  # The answer's headers, to compare the two servers (in the work directory's logs/).
  curl -s -o /dev/null -D "$WORK/logs/headers-$1.txt" "${BASE[$1]}$(head -n 1 "$WORK/keys/hot.txt")"
  NOTE="after warming: $(cache_status "$1" "$(head -n 1 "$WORK/keys/hot.txt")")"
  counts_reset >/dev/null
  load_wrk "hot-$1" "$1" list "$WORK/keys/hot.txt"
}
case_disk() {
  echo "$VIDEO_DISK" >"$WORK/keys/video-disk.txt"
  warm "$1" "$WORK/keys/video-disk.txt" 1
  NOTE="after warming: $(wait_hit "$1" "$VIDEO_DISK")"
  counts_reset >/dev/null
  load_wrk "disk-$1" "$1" list "$WORK/keys/video-disk.txt"
}
case_cold() {
  load_go "cold-$1" walk -base "${BASE[$1]}" -list "$WORK/keys/cold.txt" -c "$CONNECTIONS" -max "$DURATION"
  NOTE="${M[requests]} of $(wc -l <"$WORK/keys/cold.txt") keys, each once (bench/load walk)"
}
case_range() {
  load_wrk "range-$1" "$1" range "$VIDEO_RANGE" "$VIDEO_RANGE_BYTES" "$RANGE_BYTES" "$SEED"
  NOTE="$((RANGE_BYTES >> 10)) KiB ranges at random offsets"
}
case_storm_image() { load_storm "image-$1" "$1" "$STORM_IMAGE"; }
case_storm_video() { load_storm "video-$1" "$1" "$STORM_VIDEO"; }
case_big() {
  BEFORE=$(rss_of "$1")
  load_one "$1" "$BIG" "$BIG_BYTES"
  NOTE="RSS before $BEFORE MiB"
}
case_seek() {
  load_go "seek-$1" seek -url "${BASE[$1]}$VIDEO_SEEK" -size "$VIDEO_SEEK_BYTES" -seed "$VIDEO_SEEK_SEED"
  local f
  for f in first middle last head8 play; do X[${f}_ms]=$(ms "${R[${f}_ttfb_us]}"); done
  NOTE="4 viewers at once, first byte: first MiB ${X[first_ms]} ms, middle MiB ${X[middle_ms]} ms, last MiB ${X[last_ms]} ms, first 8 MiB ${X[head8_ms]} ms; all answered in $(ms "${R[viewers_us]}") ms; then 2 players (bytes=0-): first byte ${X[play_ms]} ms, whole video in $(ms "${R[players_us]}") ms; total $(ms "${R[duration_us]}") ms"
}

# ms MICROSECONDS: in milliseconds, one decimal.
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }

# rss_of SERVER: the resident memory of SERVER's processes now, in MiB.
rss_of() {
  local pid total=0
  for pid in "${PIDS[$1]}" $(ps -o pid= --ppid "${PIDS[$1]}"); do
    total=$(awk -v t="$total" '/^VmRSS:/ { t += $2 / 1024 } END { printf "%.1f", t }' "/proc/$pid/status" 2>/dev/null || echo "$total")
  done
  echo "$total"
}

# mib BYTES: BYTES in MiB, rounded. mb BYTES: in MB (10^6 bytes), rounded.
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }

declare -A LABEL=(
  [hot]="a. hot small objects ($HOT thumbnails, memory hits)"
  [disk]="b. one $(mib "$VIDEO_DISK_BYTES") video (disk hits)"
  [cold]="c. cold spread (misses, empty caches)"
  [range]="d. ranges into a cold $(mib "$VIDEO_RANGE_BYTES") video"
  [storm_image]="e. $STORM_CLIENTS clients at once, one cold $(mib "$STORM_IMAGE_BYTES") image"
  [storm_video]="e. $STORM_CLIENTS clients at once, one cold $(mib "$STORM_VIDEO_BYTES") video"
  [big]="f. one $(mib "$BIG_BYTES") object, cold (curl)"
  [seek]="g. seek-and-play: a cold $(mb "$VIDEO_SEEK_BYTES") video"
)
# How a case's target key is counted: every object GET, or the GETs of one key, whose size
# gives the bytes the bucket sent as a multiple of the object's.
declare -A GETS_OF=([storm_image]=$STORM_IMAGE [storm_video]=$STORM_VIDEO [seek]=$VIDEO_SEEK)
declare -A SIZE_OF=([storm_image]=$STORM_IMAGE_BYTES [storm_video]=$STORM_VIDEO_BYTES [seek]=$VIDEO_SEEK_BYTES)

# memory_tier_mib: the bytes in fedicache's memory tier now, from its metrics, in MiB.
memory_tier_mib() {
  curl -fs "http://127.0.0.1:$FC_ADMIN_PORT/metrics" |
    awk '/^fedicache_cache_bytes\{tier="memory"\}/ { printf "%.0f", $2 / 1048576 }'
}

# measure CASE SERVER ROUND: one run of CASE against a freshly started SERVER, into V.
declare -A V=() # case,server,round,field -> value; case,server,field for the median round
declare -A X=() # more figures of the last run (case_seek's first-byte times), field -> value
measure() {
  local c=$1 s=$2 k="$1,$2,$3" counts mem other bucket_bytes f
  SERVER=$s ROUND=$3
  start_fresh "$s"
  counts_reset >/dev/null
  NOTE="" BEFORE="" X=()
  "case_$c" "$s"
  V[$k,before]=$BEFORE
  for f in "${!X[@]}"; do V[$k,$f]=${X[$f]}; done
  counts=$(counts_reset)
  read -r "V[$k,gets]" "V[$k,bucket_mb]" other bucket_bytes < <(bucket_tally "$counts" "${GETS_OF[$c]:-}")
  if [ -n "${SIZE_OF[$c]:-}" ]; then
    V[$k,bucket_x]=$(ratio "$bucket_bytes" "${SIZE_OF[$c]}")
    NOTE="the bucket sent ${V[$k,bucket_x]} the object's bytes${NOTE:+; $NOTE}"
  fi
  if [ "$other" -gt 0 ]; then
    NOTE+="${NOTE:+; }$other more bucket GET$([ "$other" -eq 1 ] || echo s) of $(grep -o '?[a-z&-]*' <<<"$counts" | sort -u | paste -sd, -)"
  fi
  V[$k,peak]=$(peak_mib "${PIDS[$s]}")
  V[$k,rps]=$(awk -v n="${M[requests]}" -v s="${M[seconds]}" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
  V[$k,mbps]=$(awk -v b="${M[bytes]}" -v s="${M[seconds]}" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
  V[$k,p50]=$(awk -v v="${M[p50_ms]}" 'BEGIN { printf "%.2f", v }')
  V[$k,p99]=$(awk -v v="${M[p99_ms]}" 'BEGIN { printf "%.2f", v }')
  V[$k,errors]=${M[errors]}
  # CPU per request in microseconds: ~30 for a memory hit, ~1000 for a miss.
  V[$k,cpu]=$(awk -v c="${M[cpu_s]}" -v n="${M[requests]}" \
    'BEGIN { if (n > 0) { u = c * 1e6 / n; printf(u >= 100 ? "%.0f" : "%.1f", u) } else print "-" }')
  if [ "$s" = fedicache ]; then
    mem=$(memory_tier_mib || true)
    [ -z "$mem" ] || NOTE+="${NOTE:+; }memory tier $mem MiB"
  fi
  V[$k,note]=$NOTE
  stop "$s"
}

# pick_median CASE SERVER: copy the round with the median req/s to V[CASE,SERVER,*] and
# note the spread of req/s over the rounds.
pick_median() {
  local c=$1 s=$2 r f median
  median=$(for r in $(seq "$ROUNDS"); do echo "${V[$c,$s,$r,rps]} $r"; done |
    sort -g | awk '{ line[NR] = $2 } END { print line[int((NR + 1) / 2)] }')
  for f in gets bucket_mb bucket_x peak rps mbps p50 p99 cpu errors note before first_ms middle_ms last_ms head8_ms play_ms; do
    V[$c,$s,$f]=${V[$c,$s,$median,$f]:-}
  done
  if [ "$ROUNDS" -gt 1 ]; then
    V[$c,$s,note]+="${V[$c,$s,note]:+; }req/s over $ROUNDS rounds $(for r in $(seq "$ROUNDS"); do echo "${V[$c,$s,$r,rps]}"; done |
      sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }')"
  fi
}

# Each case: ROUNDS rounds, nginx then fedicache in each, every run on a fresh server.
for c in "${CASES[@]}"; do
  for r in $(seq "$ROUNDS"); do
    for s in nginx fedicache; do
      log "${LABEL[$c]}: $s, round $r of $ROUNDS"
      measure "$c" "$s" "$r"
    done
  done
  pick_median "$c" nginx
  pick_median "$c" fedicache
done

# ---------------------------------------------------------------------------------------------
# The table and the targets.

MEMORY_MIB=$((MEMORY_BYTES >> 20))
BIG_NAME=huge
[ "$BIG_BYTES" -eq 0 ] || BIG_NAME=$(mib "$BIG_BYTES")
report() {
  local c s f line
  echo "# fedicache vs nginx proxy_cache"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory; $("$NGINX" -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'), versitygw $VERSITYGW_VERSION, $(go version | awk '{ print $3 }')."
  echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per run; each case $ROUNDS rounds (nginx, then fedicache), the round with the median req/s shown$([ ${#CASES[@]} -eq ${#ALL_CASES[@]} ] || echo "; cases run: $(for c in "${CASES[@]}"; do echo "${LETTER[$c]}"; done | uniq | paste -sd ' ' -)"). fedicache: memory tier $MEMORY, disk tier $DISK; nginx: worker_processes auto, proxy_cache max_size $DISK."
  echo "Media (seed $SEED): $TREE_SUMMARY. Both servers reach the bucket through one counting proxy."
  echo
  echo "| case | server | req/s | MB/s | p50 ms | p99 ms | CPU us/req | bucket GETs | bucket MB sent | peak RSS MiB | errors | notes |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for c in "${CASES[@]}"; do
    for s in nginx fedicache; do
      echo "| $([ "$s" = nginx ] && echo "${LABEL[$c]}") | $s | ${V[$c,$s,rps]} | ${V[$c,$s,mbps]} | ${V[$c,$s,p50]} | ${V[$c,$s,p99]} | ${V[$c,$s,cpu]} | ${V[$c,$s,gets]} | ${V[$c,$s,bucket_mb]} | ${V[$c,$s,peak]} | ${V[$c,$s,errors]} | ${V[$c,$s,note]} |"
    done
    line="| | fedicache/nginx"
    for f in rps mbps p50 p99 cpu gets bucket_mb peak; do
      line+=" | $(ratio "${V[$c,fedicache,$f]}" "${V[$c,nginx,$f]}")"
    done
    echo "$line | | |"
  done
  echo
  echo "CPU us/req: the user and system CPU time of the server's processes (nginx: master and workers; fedicache: its one process) from just before the load of the run to just after it, over the requests completed, in microseconds; counted in ticks of 1/$CLK_TCK s, so coarse for cases of few requests. Bucket GETs and MB sent: object GETs the counting proxy saw during the run and the megabytes (10^6 bytes) of their answers, what the bucket sent (storm and seek cases: of that key only). Peak RSS: VmHWM of the server's processes (nginx: master, workers and cache processes summed), each server started afresh with empty caches for each run. Errors: failed requests and answers other than 200/206 (seek: also a wrong Content-Range, length or byte). Ratios: fedicache/nginx, so above 1 is better for req/s and MB/s, below 1 is better for latency, CPU, GETs, bucket MB and RSS."
  echo
  echo "## Targets"
  echo
  targets
}

# at_most RATIO LIMIT, at_least RATIO LIMIT: RATIO ("0.80x"; "-" when it has no value) is at
# most, at least LIMIT.
at_most() { [ "$1" != - ] && ge "$2" "${1%x}"; }
at_least() { [ "$1" != - ] && ge "${1%x}" "$2"; }

# mbps_target CASE MIN TITLE: the target "fedicache's MB/s >= MIN x nginx's" of CASE.
mbps_target() {
  local c=$1 min=$2 t="$3: >= $2x nginx's MB/s" r verdict=MISS
  ran_or_skip "$c" "$t" || return 0
  r=$(ratio "${V[$c,fedicache,mbps]}" "${V[$c,nginx,mbps]}")
  at_least "$r" "$min" && verdict=PASS
  echo "- $verdict $t: $r (${V[$c,fedicache,mbps]} vs ${V[$c,nginx,mbps]} MB/s)"
}

# ran_or_skip CASE TEXT: true when CASE ran; if not, prints TEXT's target as skipped.
ran_or_skip() {
  ran "$1" && return 0
  echo "- SKIP $2: case ${LETTER[$1]} not run"
  return 1
}

# rounds CASE SERVER FIELD [SUFFIX]: FIELD of every round, with SUFFIX, separated by spaces.
rounds() {
  local r out=""
  for r in $(seq "$ROUNDS"); do out+="${out:+ }${V[$1,$2,$r,$3]}${4:-}"; done
  echo "$out"
}

# targets: PASS, MISS or SKIP for each target, with the figures it is judged on.
targets() {
  local c t r p fc nx cpu verdict line s worst=0 worst_at="" growth=0 failed=0
  # Hot hits and the cold spread: CPU per request, requests/s and p99 of the median round.
  for c in hot cold; do
    case $c in
      hot) t="hot small objects (a): CPU per request <= 0.67x nginx's, requests/s >= 1.2x, p99 no worse" ;;
      cold) t="cold spread (c): CPU per request <= 1.0x nginx's, requests/s >= 1.0x, p99 no worse" ;;
    esac
    ran_or_skip "$c" "$t" || continue
    cpu=$(ratio "${V[$c,fedicache,cpu]}" "${V[$c,nginx,cpu]}")
    r=$(ratio "${V[$c,fedicache,rps]}" "${V[$c,nginx,rps]}")
    fc=${V[$c,fedicache,p99]}
    nx=${V[$c,nginx,p99]}
    verdict=MISS
    case $c in
      hot) at_most "$cpu" 0.67 && at_least "$r" 1.2 && ge "$nx" "$fc" && verdict=PASS ;;
      cold) at_most "$cpu" 1.0 && at_least "$r" 1.0 && ge "$nx" "$fc" && verdict=PASS ;;
    esac
    echo "- $verdict $t: CPU $cpu (${V[$c,fedicache,cpu]} vs ${V[$c,nginx,cpu]} us/req), requests/s $r (${V[$c,fedicache,rps]} vs ${V[$c,nginx,rps]}), p99 $fc ms vs $nx ms"
  done
  mbps_target disk 1.0 "disk hits (b)"
  mbps_target big 0.9 "cold $BIG_NAME object (f)"
  # The rest hold in every round, not only in the median one.
  t="cold-key storm (e): exactly 1 bucket GET for $STORM_CLIENTS clients, image then video, every round"
  if ran_or_skip storm_image "$t"; then
    verdict=PASS
    for c in storm_image storm_video; do
      for r in $(seq "$ROUNDS"); do [ "${V[$c,fedicache,$r,gets]}" = 1 ] || verdict=MISS; done
    done
    echo "- $verdict $t: fedicache $(rounds storm_image fedicache gets) $(rounds storm_video fedicache gets); nginx $(rounds storm_image nginx gets) $(rounds storm_video nginx gets)"
  fi
  t="seek-and-play (g): at most 2 bucket GETs and at most 1.05x the object's bytes from the bucket, every round"
  if ran_or_skip seek "$t"; then
    verdict=PASS
    for r in $(seq "$ROUNDS"); do
      [ "${V[seek,fedicache,$r,gets]}" -le 2 ] && at_most "${V[seek,fedicache,$r,bucket_x]}" 1.05 &&
        [ "${V[seek,fedicache,$r,errors]}" -eq 0 ] || verdict=MISS
    done
    line=""
    for s in fedicache nginx; do
      line+="${line:+; }$s GETs $(rounds seek "$s" gets), bytes $(rounds seek "$s" bucket_x) the object's, errors $(rounds seek "$s" errors)"
    done
    echo "- $verdict $t: $line"
    line=""
    for s in fedicache nginx; do
      line+="${line:+; }$s middle MiB $(rounds seek "$s" middle_ms) ms, last MiB $(rounds seek "$s" last_ms) ms"
    done
    echo "- INFO seek-and-play (g), first byte of a far seek, each round: $line"
  fi
  t="peak RSS <= memory tier + 64 MiB ($((MEMORY_MIB + 64)) MiB) in every case"
  for c in "${CASES[@]}"; do
    for r in $(seq "$ROUNDS"); do
      p=${V[$c,fedicache,$r,peak]}
      if ge "$p" "$worst"; then worst=$p worst_at="${LABEL[$c]%%.*}, round $r"; fi
    done
  done
  verdict=MISS
  ge "$((MEMORY_MIB + 64))" "$worst" && verdict=PASS
  echo "- $verdict $t: highest $worst MiB (case $worst_at)"
  t="$BIG_NAME object through a cold fedicache (f): RSS growth < 64 MiB"
  if ran_or_skip big "$t"; then
    for r in $(seq "$ROUNDS"); do
      p=$(awk -v a="${V[big,fedicache,$r,peak]}" -v b="${V[big,fedicache,$r,before]}" 'BEGIN { printf "%.1f", a - b }')
      ge "$growth" "$p" || growth=$p
      failed=$((failed + V[big,fedicache,$r,errors]))
    done
    verdict=MISS
    [ "$failed" -eq 0 ] && ge 64 "$growth" && [ "$growth" != 64.0 ] && verdict=PASS
    echo "- $verdict $t: at most +$growth MiB over $ROUNDS rounds, $failed incomplete answers"
  fi
}

report | tee "$RESULTS"
log "results written to ${RESULTS#"$REPO"/}"
