#!/usr/bin/env bash
# bench/backfill.sh: the one-shot `fedicache backfill` against `aws s3 sync` and `rclone copy`,
# copying the same Mastodon-shaped old volume into a real S3 server at the same concurrency.
#
# Run it from the repository root:   bench/backfill.sh
#
# It installs what is missing (awscli, rclone and GNU time with apt-get, versitygw with go
# install), builds fedicache and bench/backfillgen, writes a seeded tree of BENCH_FILES files
# of 20-200 KB (media_attachments/files/<id partition>/original|small/<16 hex>.<ext>), starts
# versitygw (posix backend, signatures checked, an access log to count requests), then for
# each tool in turn: creates an empty bucket, times the full copy, checks the bucket (every
# key and size, and the bytes of a sample), and times a second run on the finished bucket
# (nothing to do). It prints one table with PASS/MISS per target, also written to
# bench/backfill-results-latest.md (BENCH_RESULTS moves it). Everything it starts is stopped
# at the end, Ctrl-C included; its work directory is removed unless BENCH_KEEP=1.
#
# Each tool runs as it ships, with only its concurrency set to BENCH_CONCURRENCY:
#   aws s3 sync        s3.max_concurrent_requests, in a private AWS_CONFIG_FILE
#   rclone copy        --transfers and --checkers (no rclone config file is read)
#   fedicache backfill --concurrency (Content-MD5 and the public-read ACL, its defaults)
# Peak RSS is GNU time's "maximum resident set size" of the tool's process; CPU time is the
# tool's (GNU time) and the bucket server's (/proc), as both share the machine.
#
# Settings (environment; defaults in brackets):
#   BENCH_FILES [10000]        files of the old volume
#   BENCH_CONCURRENCY [16]     copies at once, for every tool
#   BENCH_FILES_LARGE [0]      when set (e.g. 100000), a second fedicache-only copy of a volume
#                              that large, to show its peak RSS stays flat. Off by default: at
#                              100000 files it takes about ten times the copy of 10000 and
#                              needs 16 GB more disk (the volume and its bucket)
#   BENCH_SEED [1]             the same seed gives the same tree
#   BENCH_SAMPLE [20]          objects per bucket whose bytes are compared with the files
#   BENCH_DIR [$TMPDIR or /tmp]  where the work directory is made
#   BENCH_KEEP [0]             1 keeps the work directory (logs, configurations, data)
#   BENCH_RESULTS [bench/backfill-results-latest.md]
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD

FILES=${BENCH_FILES:-10000}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
FILES_LARGE=${BENCH_FILES_LARGE:-0}
SEED=${BENCH_SEED:-1}
SAMPLE=${BENCH_SAMPLE:-20}
RESULTS=${BENCH_RESULTS:-$REPO/bench/backfill-results-latest.md}
VERSITYGW_VERSION=v1.8.0
TOOLS=(aws rclone fedicache)
# The targets: fedicache this many times faster than aws s3 sync, and its peak RSS below this.
TARGET_SPEEDUP=2
TARGET_RSS_MIB=100

for n in "$FILES" "$CONCURRENCY" "$FILES_LARGE" "$SAMPLE"; do
  [[ $n =~ ^[0-9]+$ ]] || die "BENCH_FILES, BENCH_CONCURRENCY, BENCH_FILES_LARGE and BENCH_SAMPLE take whole numbers, not \"$n\""
done
if [ "$FILES" -lt 1 ] || [ "$CONCURRENCY" -lt 1 ]; then die "BENCH_FILES and BENCH_CONCURRENCY must be at least 1"; fi

# ---------------------------------------------------------------------------------------------
# Tools: install what is missing.

command -v go >/dev/null || die "go is needed (the version in go.mod)"
for tool in awk ps; do command -v "$tool" >/dev/null || die "$tool is needed"; done
command -v aws >/dev/null || apt_install awscli
command -v rclone >/dev/null || apt_install rclone
# GNU time, for the peak RSS (not the shell's time keyword).
[ -x /usr/bin/time ] || apt_install time
install_versitygw "$VERSITYGW_VERSION"

# ---------------------------------------------------------------------------------------------
# Work directory and the processes started: all stopped and removed on exit, Ctrl-C included.

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/fedicache-backfill.XXXXXX")
mkdir -p "$WORK"/{logs,gw,aws,fc}
declare -A PIDS=() # name -> pid of each process this script started and has not stopped

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# parse_result LINE: the key=value pairs of a RESULT line, into R.
declare -A R=()
# ---------------------------------------------------------------------------------------------
# Build, start the bucket server, write the old volume.

log "building fedicache and bench/backfillgen"
go build -trimpath -o "$WORK/fedicache" ./cmd/fedicache
go build -trimpath -o "$WORK/backfillgen" ./bench/backfillgen

GW_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$GW_PORT
ACCESS_LOG=$WORK/logs/access.log
# The tools talk plain HTTP to this local server with the settings below only: the caller's
# AWS_* and RCLONE_* settings (a profile, an endpoint, a CA bundle, which rclone's SDK refuses
# alongside its own transport) are dropped.
unset "${!AWS_@}" "${!RCLONE_@}"
# One pair of keys for every tool, from the environment (AWS_* for aws and backfillgen,
# RCLONE_S3_* for rclone, the configuration file for fedicache). No user configuration is read:
# aws gets private config and credentials files, rclone none.
export AWS_ACCESS_KEY_ID=bench
AWS_SECRET_ACCESS_KEY=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
export AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$WORK/aws/config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws/credentials
export RCLONE_CONFIG=/dev/null RCLONE_S3_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_S3_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
: >"$AWS_SHARED_CREDENTIALS_FILE"
aws configure set default.s3.max_concurrent_requests "$CONCURRENCY"

log "starting versitygw on 127.0.0.1:$GW_PORT"
: >"$ACCESS_LOG"
ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  start versitygw "$VERSITYGW" --port "127.0.0.1:$GW_PORT" --quiet --keep-alive \
  --access-log "$ACCESS_LOG" posix "$WORK/gw"
wait_port versitygw "$GW_PORT"

# generate DIR N: write an old volume of N files into DIR; sets TREE_BYTES, their size.
generate() {
  log "writing $2 files into the old volume ${1#"$WORK"/} (seed $SEED)"
  run gen "$WORK/backfillgen" gen -dir "$1" -files "$2" -seed "$SEED" >"$WORK/logs/gen-$2.txt"
  parse_result "$(grep '^RESULT ' "$WORK/logs/gen-$2.txt")"
  [ "${R[files]}" = "$2" ] || die "backfillgen wrote ${R[files]} files, not $2"
  TREE_BYTES=${R[bytes]}
}
generate "$WORK/volume" "$FILES"
FILES_BYTES=$TREE_BYTES
# Let the writes reach the disk now, not during the first tool's copy.
sync

# ---------------------------------------------------------------------------------------------
# Measuring.

# write_fedicache_conf FILE BUCKET VOLUME: fedicache's configuration for one copy. versitygw
# takes the x-amz-acl header of PutObject, so s3.acl keeps its default (public-read), as on a
# bucket Mastodon writes to; s3.permission is the front's check and plays no part here.
write_fedicache_conf() {
  cat >"$1" <<EOF
s3:
  endpoint: $ENDPOINT
  region: us-east-1
  bucket: $2
  force_path_style: true
  access_key_id: $AWS_ACCESS_KEY_ID
  secret_access_key: $AWS_SECRET_ACCESS_KEY
  permission: ""
fallback:
  dir: $3
log:
  level: warn
EOF
}

# copy_cmd TOOL BUCKET VOLUME: the command line of TOOL copying VOLUME into BUCKET, in CMD.
copy_cmd() {
  case $1 in
    aws) CMD=(aws s3 sync "$3" "s3://$2" --endpoint-url "$ENDPOINT" --no-progress) ;;
    rclone)
      CMD=(rclone copy "$3" ":s3:$2" --s3-provider Other --s3-endpoint "$ENDPOINT"
        --transfers "$CONCURRENCY" --checkers "$CONCURRENCY" --s3-no-check-bucket)
      ;;
    fedicache*)
      write_fedicache_conf "$WORK/fc/$2.yaml" "$2" "$3"
      CMD=("$WORK/fedicache" backfill --config "$WORK/fc/$2.yaml" --concurrency "$CONCURRENCY")
      ;;
  esac
}

# log_lines: the lines of the access log so far, once versitygw has stopped adding to it (a
# line may be written just after its answer went out).
log_lines() {
  local n m
  n=$(wc -l <"$ACCESS_LOG")
  while sleep 0.2; m=$(wc -l <"$ACCESS_LOG"); [ "$m" != "$n" ]; do n=$m; done
  echo "$n"
}

# requests BUCKET FROM: "TOTAL BREAKDOWN": the requests to BUCKET in the access log after line
# FROM, and their count by operation, most frequent first ("PutObject 10000, ListObjectsV2 11").
requests() {
  local ops
  ops=$(tail -n "+$(($2 + 1))" "$ACCESS_LOG" | awk -v b="$1" '$2 == b { sub(/^s3_/, "", $8); print $8 }' |
    sort | uniq -c | sort -rn)
  awk '{ n += $1; ops = ops (NR > 1 ? ", " : "") $2 " " $1 } END { print n + 0, ops }' <<<"$ops"
}

declare -A V=() # tool,phase,field -> value

# cpu_seconds NAME: the CPU time (user + system) the process started under NAME and its
# children have used so far, in seconds.
CLK_TCK=$(getconf CLK_TCK)
cpu_seconds() {
  local pid ticks=0 t
  for pid in $(tree_of "${PIDS[$1]}"); do
    # Fields 14 and 15 of /proc/PID/stat, counted after the command name, which may hold spaces.
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    ticks=$((ticks + t))
  done
  awk -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'
}

# measure TOOL PHASE BUCKET VOLUME: run TOOL's copy of VOLUME into BUCKET, into V[TOOL,PHASE,*]:
# seconds, peak RSS, the CPU time of the tool and of the bucket server, requests and their
# breakdown.
measure() {
  local tool=$1 phase=$2 k="$1,$2" before t0 t1 gw0 gw1 out=$WORK/logs/$1-$2
  copy_cmd "$tool" "$3" "$4"
  before=$(log_lines)
  log "$tool, $phase: ${CMD[*]}"
  gw0=$(cpu_seconds versitygw)
  t0=$EPOCHREALTIME
  run "$tool" /usr/bin/time -f '%M %U %S' -o "$out.time" "${CMD[@]}" >"$out.log" 2>&1 ||
    { tail -n 20 "$out.log" >&2; die "$tool failed ($phase run): its log is above"; }
  t1=$EPOCHREALTIME
  gw1=$(cpu_seconds versitygw)
  V[$k,seconds]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  V[$k,rss]=$(awk 'END { printf "%.1f", $1 / 1024 }' "$out.time")
  V[$k,cpu]=$(awk 'END { printf "%.2f", $2 + $3 }' "$out.time")
  V[$k,gwcpu]=$(awk -v a="$gw0" -v b="$gw1" 'BEGIN { printf "%.2f", b - a }')
  read -r "V[$k,requests]" "V[$k,ops]" < <(requests "$3" "$before")
  log "$tool, $phase: ${V[$k,seconds]} s, peak RSS ${V[$k,rss]} MiB, CPU ${V[$k,cpu]} s (server ${V[$k,gwcpu]} s), ${V[$k,requests]} requests (${V[$k,ops]})"
}

# check TOOL BUCKET VOLUME FILES: compare BUCKET with VOLUME, into V[TOOL,check] ("ok" or what
# is wrong) and V[TOOL,objects], V[TOOL,bytes].
check() {
  local out=$WORK/logs/check-$2.txt problems=""
  run check "$WORK/backfillgen" check -endpoint "$ENDPOINT" -bucket "$2" -dir "$3" \
    -sample "$SAMPLE" -seed "$SEED" >"$out"
  parse_result "$(grep '^RESULT ' "$out")"
  V[$1,objects]=${R[objects]} V[$1,bytes]=${R[bytes]}
  [ "${R[objects]}" = "$4" ] || problems+="${R[objects]} objects, not $4; "
  [ "${R[missing]}" = 0 ] || problems+="${R[missing]} missing; "
  [ "${R[extra]}" = 0 ] || problems+="${R[extra]} extra; "
  [ "${R[size_mismatch]}" = 0 ] || problems+="${R[size_mismatch]} of another size; "
  [ "${R[differ]}" = 0 ] || problems+="${R[differ]} of ${R[sampled]} sampled differ; "
  V[$1,check]=${problems:-ok}
  V[$1,sampled]=${R[sampled]}
  log "$2: ${R[objects]} objects, $(mb "${R[bytes]}") MB; ${V[$1,check]}"
}

# mb BYTES: BYTES in MB (10^6), one decimal.
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
# per_second N SECONDS: N / SECONDS, one decimal.
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }
# bench TOOL BUCKET VOLUME FILES: TOOL's full copy into an empty BUCKET, the check, the rerun.
bench() {
  run mkbucket "$WORK/backfillgen" mkbucket -endpoint "$ENDPOINT" -bucket "$2"
  measure "$1" copy "$2" "$3"
  check "$1" "$2" "$3" "$4"
  measure "$1" rerun "$2" "$3"
}

RUNS=("${TOOLS[@]}") # every run, for the notes and checks: the tools, then the large one
for tool in "${TOOLS[@]}"; do
  bench "$tool" "bucket-$tool" "$WORK/volume" "$FILES"
done
# What fedicache's rerun says it copied (its summary: "copied 0 files, 0 B").
FC_RERUN_COPIED=$(awk '$1 == "copied" { $1 = ""; sub(/^ +/, ""); print }' "$WORK/logs/fedicache-rerun.log")

# The optional large volume: fedicache only, to show that its memory does not grow with it.
if [ "$FILES_LARGE" -gt 0 ]; then
  generate "$WORK/volume-large" "$FILES_LARGE"
  LARGE_BYTES=$TREE_BYTES
  sync
  bench fedicache-large bucket-fedicache-large "$WORK/volume-large" "$FILES_LARGE"
  RUNS+=(fedicache-large)
fi

# ---------------------------------------------------------------------------------------------
# The table and the targets.

# row LABEL TOOL FILES BYTES [BASE]: one line of the table; BASE is the tool the times are
# compared with (fedicache), none for the large run.
row() {
  local t=$2 cmp="" rerun=""
  if [ -n "${5:-}" ]; then
    cmp=$(ratio "${V[$t,copy,seconds]}" "${V[$5,copy,seconds]}")
    rerun=$(ratio "${V[$t,rerun,seconds]}" "${V[$5,rerun,seconds]}")
  fi
  echo "| $1 | ${V[$t,objects]} | $(mb "${V[$t,bytes]}") | ${V[$t,copy,seconds]} | $(per_second "$3" "${V[$t,copy,seconds]}") | $(per_second "$(mb "$4")" "${V[$t,copy,seconds]}") | ${V[$t,copy,rss]} | ${V[$t,copy,cpu]} | ${V[$t,copy,gwcpu]} | ${V[$t,copy,requests]} | ${V[$t,rerun,seconds]} | ${V[$t,rerun,requests]} | ${V[$t,rerun,rss]} | $cmp | $rerun | ${V[$t,check]} |"
}

report() {
  local t verdict speedup rss_note worst
  echo "# fedicache backfill vs aws s3 sync vs rclone copy"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory; $(aws --version 2>&1 | awk '{ print $1 }'), $(rclone version 2>/dev/null | awk 'NR == 1 { print $1 "/" $2 }'), fedicache $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "(no git)"), versitygw $VERSITYGW_VERSION (posix backend, access log on), $(go version | awk '{ print $3 }')."
  echo "Old volume (seed $SEED): $FILES files, $(mb "$FILES_BYTES") MB, media_attachments/files/<id partition>/original|small/<name>, originals 60-200 KB and thumbnails 20-60 KB. Every tool at concurrency $CONCURRENCY, into its own empty bucket on the same server, one after the other."
  echo
  echo "| tool | objects | MB | seconds | files/s | MB/s | peak RSS MiB | CPU s | server CPU s | requests | rerun seconds | rerun requests | rerun peak RSS MiB | time / fedicache's | rerun time / fedicache's | bucket check |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  row "aws s3 sync" aws "$FILES" "$FILES_BYTES" fedicache
  row "rclone copy" rclone "$FILES" "$FILES_BYTES" fedicache
  row "fedicache backfill" fedicache "$FILES" "$FILES_BYTES" fedicache
  if [ "$FILES_LARGE" -gt 0 ]; then
    row "fedicache backfill, $FILES_LARGE files" fedicache-large "$FILES_LARGE" "$LARGE_BYTES"
  fi
  echo
  echo "Seconds: wall time of the whole command, start-up included. MB: 10^6 bytes. Peak RSS: GNU time's maximum resident set size of the tool's process. CPU s: user + system time of the tool; server CPU s: of versitygw during the copy ($(nproc) cores in all, shared by both). Requests: those the bucket server logged for the tool's bucket, by operation below. Rerun: the same command again on the finished bucket, nothing left to copy. Time / fedicache's: above 1 means fedicache was faster. Bucket check: every key and size of the volume in the bucket, nothing else, and $SAMPLE objects drawn from the seed byte-equal to their files."
  echo
  echo "Requests by operation:"
  echo
  for t in "${RUNS[@]}"; do
    echo "- $t: copy ${V[$t,copy,ops]:-none}; rerun ${V[$t,rerun,ops]:-none}"
  done
  echo
  echo "## Targets"
  echo
  speedup=$(ratio "${V[aws,copy,seconds]}" "${V[fedicache,copy,seconds]}")
  verdict=MISS
  ge "${speedup%x}" "$TARGET_SPEEDUP" && verdict=PASS
  echo "- $verdict fedicache >= ${TARGET_SPEEDUP}x faster than aws s3 sync: ${speedup} (${V[aws,copy,seconds]} s vs ${V[fedicache,copy,seconds]} s); against rclone copy $(ratio "${V[rclone,copy,seconds]}" "${V[fedicache,copy,seconds]}") (no target)"
  worst=${V[fedicache,copy,rss]}
  rss_note="${V[fedicache,copy,rss]} MiB at $FILES files"
  for t in fedicache fedicache-large; do
    for phase in copy rerun; do
      [ -n "${V[$t,$phase,rss]:-}" ] || continue
      ge "$worst" "${V[$t,$phase,rss]}" || worst=${V[$t,$phase,rss]}
    done
  done
  [ "$FILES_LARGE" -eq 0 ] || rss_note+=", ${V[fedicache-large,copy,rss]} MiB at $FILES_LARGE files"
  [ "$FILES_LARGE" -gt 0 ] || rss_note+=" (BENCH_FILES_LARGE=100000 adds a larger volume)"
  verdict=MISS
  ge "$worst" "$TARGET_RSS_MIB" || verdict=PASS
  echo "- $verdict fedicache's peak RSS flat, < $TARGET_RSS_MIB MiB: $rss_note; highest of every fedicache run $worst MiB"
  verdict=PASS
  for t in "${RUNS[@]}"; do
    [ "${V[$t,check]}" = ok ] || verdict=MISS
  done
  echo "- $verdict every bucket complete and right: $(for t in "${RUNS[@]}"; do printf '%s %s; ' "$t" "${V[$t,check]}"; done | sed 's/; $//')"
  verdict=MISS
  [[ ${V[fedicache,rerun,ops]} != *PutObject* && ${V[fedicache,rerun,ops]} != *UploadPart* &&
    $FC_RERUN_COPIED == "0 files, 0 B" ]] && verdict=PASS
  echo "- $verdict fedicache's rerun uploads nothing: its summary says copied $FC_RERUN_COPIED; requests ${V[fedicache,rerun,ops]}"
}

report | tee "$RESULTS"
log "results written to ${RESULTS#"$REPO"/}"
