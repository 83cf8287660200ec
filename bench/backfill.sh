#!/usr/bin/env bash
# bench/backfill.sh: the one-shot `fedicache backfill` against `aws s3 sync` and `rclone copy`,
# copying the same Mastodon-shaped old volume into a real S3 server at the same concurrency;
# then an old bucket into a new one on the same server against `rclone copy` (both copy
# server-side), and optionally the rerun of a finished volume of a million files.
#
# Run it from the repository root:   bench/backfill.sh
#
# It installs what is missing (awscli, rclone and GNU time with apt-get, versitygw with go
# install), builds fedicache and bench/backfillgen, writes a seeded tree of BENCH_FILES files
# of 20-200 KB (media_attachments/files/<id partition>/original|small/<16 hex>.<ext>), starts
# versitygw (posix backend, signatures checked, an access log to count requests), then for
# each tool in turn: creates an empty bucket, times the full copy, checks the bucket (every
# key and size, and the bytes of a sample), and times a second run on the finished bucket
# (nothing to do).
#
# Bucket to bucket: the same tree is placed into an old bucket without uploading it
# (backfillgen place hardlinks the files into versitygw's bucket directory, with the ETag,
# Content-Type and Cache-Control versitygw keeps for an upload; the bucket check proves it
# lists and serves them), then `rclone copy :s3:old :s3:new` and `fedicache backfill` with the
# old bucket in fallback.stores (same endpoint and keys) each copy it into an empty bucket.
#
# It waits for any go test or .ci/run to end before the timed parts, and prints the tables
# with PASS/MISS per target, also written to
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
#   BENCH_RERUN_FILES [0]      when set (e.g. 1000000), a volume of that many tiny files in
#                              Mastodon's layout is written straight into a bucket directory of
#                              versitygw (the finished bucket), and fedicache's rerun on it is
#                              timed. Off by default: at a million files writing the tree took
#                              4.7 minutes and the rerun 2.7 on 2 shared cores, and the tree
#                              takes about 3.5 million inodes
#   BENCH_PROFILE [0]          seconds of CPU profile of fedicache's volume copy (through
#                              --admin-listen), shorter than the copy; its top entries are added
#                              to the results
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
RERUN_FILES=${BENCH_RERUN_FILES:-0}
PROFILE=${BENCH_PROFILE:-0}
SEED=${BENCH_SEED:-1}
SAMPLE=${BENCH_SAMPLE:-20}
RESULTS=${BENCH_RESULTS:-$REPO/bench/backfill-results-latest.md}
VERSITYGW_VERSION=v1.8.0
TOOLS=(aws rclone fedicache)
# The targets: fedicache this many times faster than aws s3 sync and than rclone copy, its peak
# RSS below this, and its rerun of BENCH_RERUN_FILES within this many seconds.
TARGET_SPEEDUP=2
TARGET_RCLONE=1.2
TARGET_RSS_MIB=100
TARGET_RERUN_SECONDS=60

for n in "$FILES" "$CONCURRENCY" "$FILES_LARGE" "$RERUN_FILES" "$PROFILE" "$SAMPLE"; do
  [[ $n =~ ^[0-9]+$ ]] || die "BENCH_FILES, BENCH_CONCURRENCY, BENCH_FILES_LARGE, BENCH_RERUN_FILES, BENCH_PROFILE and BENCH_SAMPLE take whole numbers, not \"$n\""
done
if [ "$FILES" -lt 1 ] || [ "$CONCURRENCY" -lt 1 ]; then die "BENCH_FILES and BENCH_CONCURRENCY must be at least 1"; fi

# ---------------------------------------------------------------------------------------------
# Tools: install what is missing.

command -v go >/dev/null || die "go is needed (the version in go.mod)"
for tool in awk ps pgrep curl; do command -v "$tool" >/dev/null || die "$tool is needed"; done
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

# s3_section BUCKET: the s3 section of fedicache's configuration for BUCKET on the server.
s3_section() {
  cat <<EOF
s3:
  endpoint: $ENDPOINT
  region: us-east-1
  bucket: $1
  force_path_style: true
  access_key_id: $AWS_ACCESS_KEY_ID
  secret_access_key: $AWS_SECRET_ACCESS_KEY
  permission: ""
EOF
}

# write_fedicache_conf FILE BUCKET VOLUME: fedicache's configuration for one copy. versitygw
# takes the x-amz-acl header of PutObject, so s3.acl keeps its default (public-read), as on a
# bucket Mastodon writes to; s3.permission is the front's check and plays no part here.
write_fedicache_conf() {
  { s3_section "$2"; cat <<EOF
fallback:
  dir: $3
log:
  level: warn
EOF
} >"$1"
}

# write_fedicache_store_conf FILE BUCKET OLD: fedicache's configuration for the copy of the old
# bucket OLD into BUCKET, both on the one server with the same keys: the copy is server-side.
# versitygw keeps no object ACLs (GetObjectAcl is NotImplemented: fedicache gives every copy
# s3.acl), so the old store's permission is "".
write_fedicache_store_conf() {
  { s3_section "$2"; cat <<EOF
fallback:
  stores:
    - name: old
      endpoint: $ENDPOINT
      region: us-east-1
      bucket: $3
      force_path_style: true
      access_key_id: $AWS_ACCESS_KEY_ID
      secret_access_key: $AWS_SECRET_ACCESS_KEY
      permission: ""
log:
  level: warn
EOF
} >"$1"
}

# copy_cmd TOOL BUCKET FROM: the command line of TOOL copying FROM (a volume; the old
# bucket's name for the *-b2b tools) into BUCKET, in CMD.
copy_cmd() {
  local rclone_s3=(--s3-provider Other --s3-endpoint "$ENDPOINT" --transfers "$CONCURRENCY"
    --checkers "$CONCURRENCY" --s3-no-check-bucket)
  case $1 in
    rclone-b2b) CMD=(rclone copy ":s3:$3" ":s3:$2" "${rclone_s3[@]}") ;;
    fedicache-b2b)
      write_fedicache_store_conf "$WORK/fc/$2.yaml" "$2" "$3"
      CMD=("$WORK/fedicache" backfill --config "$WORK/fc/$2.yaml" --concurrency "$CONCURRENCY")
      ;;
    aws) CMD=(aws s3 sync "$3" "s3://$2" --endpoint-url "$ENDPOINT" --no-progress) ;;
    rclone)
      CMD=(rclone copy "$3" ":s3:$2" "${rclone_s3[@]}") ;;
    fedicache*)
      write_fedicache_conf "$WORK/fc/$2.yaml" "$2" "$3"
      CMD=("$WORK/fedicache" backfill --config "$WORK/fc/$2.yaml" --concurrency "$CONCURRENCY")
      ;;
  esac
}

declare -A V=() # tool,phase,field -> value

# measure TOOL PHASE BUCKET FROM: run TOOL's copy of FROM into BUCKET, into V[TOOL,PHASE,*]:
# seconds, peak RSS, the CPU time of the tool and of the bucket server, requests (to BUCKET, and
# to the old bucket FROM for the *-b2b tools) and their breakdown. With BENCH_PROFILE, fedicache's
# volume copy serves its admin listener and a CPU profile of it is saved.
measure() {
  local tool=$1 phase=$2 k="$1,$2" before t0 t1 gw0 gw1 out=$WORK/logs/$1-$2 src="" port
  copy_cmd "$tool" "$3" "$4"
  [[ $tool != *-b2b ]] || src=$4
  wait_for_quiet
  before=$(log_lines "$ACCESS_LOG")
  log "$tool, $phase: ${CMD[*]}"
  if [ "$PROFILE" -gt 0 ] && [ "$tool,$phase" = fedicache,copy ]; then
    port=$(free_port)
    CMD+=(--admin-listen "127.0.0.1:$port")
    start profile curl -fsS --retry 30 --retry-connrefused --retry-delay 1 -o "$WORK/logs/fedicache-cpu.pprof" \
      "http://127.0.0.1:$port/debug/pprof/profile?seconds=$PROFILE"
  fi
  gw0=$(cpu_seconds versitygw)
  t0=$EPOCHREALTIME
  run "$tool" /usr/bin/time -f '%M %U %S' -o "$out.time" "${CMD[@]}" >"$out.log" 2>&1 ||
    { tail -n 20 "$out.log" >&2; die "$tool failed ($phase run): its log is above"; }
  t1=$EPOCHREALTIME
  gw1=$(cpu_seconds versitygw)
  if [ -n "${PIDS[profile]:-}" ]; then
    wait "${PIDS[profile]}" || log "no CPU profile: BENCH_PROFILE must be shorter than the copy"
    unset "PIDS[profile]"
  fi
  V[$k,seconds]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  V[$k,rss]=$(awk 'END { printf "%.1f", $1 / 1024 }' "$out.time")
  V[$k,cpu]=$(awk 'END { printf "%.2f", $2 + $3 }' "$out.time")
  V[$k,gwcpu]=$(awk -v a="$gw0" -v b="$gw1" 'BEGIN { printf "%.2f", b - a }')
  read -r "V[$k,requests]" "V[$k,ops]" < <(requests "$ACCESS_LOG" "$before" "$3" "$src")
  log "$tool, $phase: ${V[$k,seconds]} s, peak RSS ${V[$k,rss]} MiB, CPU ${V[$k,cpu]} s (server ${V[$k,gwcpu]} s), ${V[$k,requests]} requests (${V[$k,ops]})"
}

# check TOOL BUCKET VOLUME FILES [-etags]: compare BUCKET with VOLUME, into V[TOOL,check] ("ok"
# or what is wrong) and V[TOOL,objects], V[TOOL,bytes]; -etags also compares every listed ETag
# with the MD5 of its file.
check() {
  local out=$WORK/logs/check-$2.txt problems=""
  run check "$WORK/backfillgen" check -endpoint "$ENDPOINT" -bucket "$2" -dir "$3" \
    -sample "$SAMPLE" -seed "$SEED" ${5:+"$5"} >"$out"
  parse_result "$(grep '^RESULT ' "$out")"
  V[$1,objects]=${R[objects]} V[$1,bytes]=${R[bytes]}
  [ "${R[objects]}" = "$4" ] || problems+="${R[objects]} objects, not $4; "
  [ "${R[missing]}" = 0 ] || problems+="${R[missing]} missing; "
  [ "${R[extra]}" = 0 ] || problems+="${R[extra]} extra; "
  [ "${R[size_mismatch]}" = 0 ] || problems+="${R[size_mismatch]} of another size; "
  [ "${R[differ]}" = 0 ] || problems+="${R[differ]} of ${R[sampled]} sampled differ; "
  [ "${R[etag_mismatch]}" = 0 ] || problems+="${R[etag_mismatch]} ETags not the MD5; "
  V[$1,check]=${problems:-ok}
  V[$1,sampled]=${R[sampled]}
  log "$2: ${R[objects]} objects, $(mb "${R[bytes]}") MB; ${V[$1,check]}"
}

# mb BYTES: BYTES in MB (10^6), one decimal.
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
# bench TOOL BUCKET FROM FILES [VOLUME [-etags]]: TOOL's full copy of FROM into an empty BUCKET,
# the check (against VOLUME, by default FROM), the rerun.
bench() {
  run mkbucket "$WORK/backfillgen" mkbucket -endpoint "$ENDPOINT" -bucket "$2"
  measure "$1" copy "$2" "$3"
  check "$1" "$2" "${5:-$3}" "$4" ${6:+"$6"}
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

# Bucket to bucket: the volume's tree placed into the old bucket (hardlinks with versitygw's
# metadata, no upload), checked as served (keys, sizes, ETags = MD5, sample bytes), then each
# tool copies it into its own empty bucket on the same server.
run mkbucket "$WORK/backfillgen" mkbucket -endpoint "$ENDPOINT" -bucket old
log "placing the old volume into the old bucket"
run place "$WORK/backfillgen" place -dir "$WORK/volume" -to "$WORK/gw/old" >"$WORK/logs/place.txt"
sync
check old old "$WORK/volume" "$FILES" -etags
# Object ACLs: the check of private objects needs a server that keeps them.
run aclprobe "$WORK/backfillgen" aclprobe -endpoint "$ENDPOINT" -bucket old \
  -key "$(cd "$WORK/volume" && find . -type f -print -quit | cut -c3-)" >"$WORK/logs/aclprobe.txt"
parse_result "$(grep '^RESULT ' "$WORK/logs/aclprobe.txt")"
ACLS=${R[acls]}
B2B=(rclone-b2b fedicache-b2b)
for tool in "${B2B[@]}"; do
  bench "$tool" "bucket-$tool" old "$FILES" "$WORK/volume" -etags
done
RUNS+=(old "${B2B[@]}")
FC_B2B_COPIED=$(awk '$1 == "copied" { $1 = ""; sub(/^ +/, ""); print }' "$WORK/logs/fedicache-b2b-rerun.log")

# The large rerun: a finished volume of RERUN_FILES tiny files, written straight into a bucket
# directory of versitygw with the ETag versitygw lists, so the volume and the bucket are the
# same files; fedicache's rerun must find every key and size there and copy nothing.
if [ "$RERUN_FILES" -gt 0 ]; then
  wait_for_quiet
  t0=$EPOCHREALTIME
  log "writing $RERUN_FILES tiny files into the finished bucket rerun"
  run gen "$WORK/backfillgen" gen -dir "$WORK/gw/rerun" -files "$RERUN_FILES" -seed "$SEED" -tiny -meta \
    >"$WORK/logs/gen-rerun.txt"
  sync
  RERUN_GEN_SECONDS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
  parse_result "$(grep '^RESULT ' "$WORK/logs/gen-rerun.txt")"
  RERUN_BYTES=${R[bytes]}
  # The first run finds every file in the bucket by listing it, and keeps the record of its
  # ranges; the rerun trusts that record where the volume is unchanged, and lists nothing.
  measure fedicache-rerun first rerun "$WORK/gw/rerun"
  measure fedicache-rerun rerun rerun "$WORK/gw/rerun"
  summary() {
    awk '$1 == "not" { printf "%snot listed: %s", sep, $3; sep = "; "; next }
      $1 == "copied" || $1 == "skipped" || $1 == "failed" { $1 = $1 ": "; sub(/: +/, ": "); printf "%s%s", sep, $0; sep = "; " }' "$1"
  }
  RERUN_FIRST_SUMMARY=$(summary "$WORK/logs/fedicache-rerun-first.log")
  RERUN_SUMMARY=$(summary "$WORK/logs/fedicache-rerun-rerun.log")
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
  echo "| $1 | ${V[$t,objects]} | $(mb "${V[$t,bytes]}") | ${V[$t,copy,seconds]} | $(per_second "$3" "${V[$t,copy,seconds]}") | $(per_second "$(mb "$4")" "${V[$t,copy,seconds]}") | ${V[$t,copy,rss]} | ${V[$t,copy,cpu]} | $(per_thousand "${V[$t,copy,cpu]}" "$3") | ${V[$t,copy,gwcpu]} | $(per_thousand "${V[$t,copy,gwcpu]}" "$3") | ${V[$t,copy,requests]} | ${V[$t,rerun,seconds]} | ${V[$t,rerun,requests]} | ${V[$t,rerun,rss]} | $cmp | $rerun | ${V[$t,check]} |"
}

# b2b_row LABEL TOOL: one line of the bucket-to-bucket table.
b2b_row() {
  local t=$2 side=no
  [[ ${V[$t,copy,ops]} != *CopyObject* || ${V[$t,copy,ops]} == *old:GetObject\ * ]] || side=yes
  echo "| $1 | ${V[$t,objects]} | ${V[$t,copy,seconds]} | $(per_second "$FILES" "${V[$t,copy,seconds]}") | $side | ${V[$t,copy,rss]} | ${V[$t,copy,cpu]} | $(per_thousand "${V[$t,copy,cpu]}" "$FILES") | ${V[$t,copy,gwcpu]} | $(per_thousand "${V[$t,copy,gwcpu]}" "$FILES") | ${V[$t,copy,requests]} | ${V[$t,rerun,seconds]} | ${V[$t,rerun,requests]} | ${V[$t,rerun,rss]} | $(ratio "${V[$t,copy,seconds]}" "${V[fedicache-b2b,copy,seconds]}") | ${V[$t,check]} |"
}

report() {
  local t verdict speedup rss_note worst
  echo "# fedicache backfill vs aws s3 sync vs rclone copy"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory; $(aws --version 2>&1 | awk '{ print $1 }'), $(rclone version 2>/dev/null | awk 'NR == 1 { print $1 "/" $2 }'), fedicache $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "(no git)"), versitygw $VERSITYGW_VERSION (posix backend, access log on), $(go version | awk '{ print $3 }')."
  echo "Old volume (seed $SEED): $FILES files, $(mb "$FILES_BYTES") MB, media_attachments/files/<id partition>/original|small/<name>, originals 60-200 KB and thumbnails 20-60 KB. Every tool at concurrency $CONCURRENCY, into its own empty bucket on the same server, one after the other."
  echo
  echo "| tool | objects | MB | seconds | files/s | MB/s | peak RSS MiB | CPU s | CPU s / 1,000 files | server CPU s | server CPU s / 1,000 files | requests | rerun seconds | rerun requests | rerun peak RSS MiB | time / fedicache's | rerun time / fedicache's | bucket check |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  row "aws s3 sync" aws "$FILES" "$FILES_BYTES" fedicache
  row "rclone copy" rclone "$FILES" "$FILES_BYTES" fedicache
  row "fedicache backfill" fedicache "$FILES" "$FILES_BYTES" fedicache
  if [ "$FILES_LARGE" -gt 0 ]; then
    row "fedicache backfill, $FILES_LARGE files" fedicache-large "$FILES_LARGE" "$LARGE_BYTES"
  fi
  echo
  echo "Seconds: wall time of the whole command, start-up included. MB: 10^6 bytes. Peak RSS: GNU time's maximum resident set size of the tool's process. CPU s: user + system time of the tool; server CPU s: of versitygw during the copy ($(nproc) cores in all, shared by both). Requests: those the bucket server logged for the tool's bucket, by operation below. Rerun: the same command again on the finished bucket, nothing left to copy. Time / fedicache's: above 1 means fedicache was faster. Bucket check: every key and size of the volume in the bucket, nothing else (fedicache's own progress record under _fedicache/ left out), and $SAMPLE objects drawn from the seed byte-equal to their files. Op[_fedicache/]: requests for fedicache's progress record, not media."
  echo
  echo "## Old bucket to new bucket, on one server"
  echo
  echo "The old volume's tree placed into the bucket old (hardlinks given versitygw's object metadata, not uploaded); versitygw lists and serves it as uploaded: ${V[old,objects]} objects, $(mb "${V[old,bytes]}") MB, check (keys, sizes, every ETag the MD5 of its file, $SAMPLE sampled bodies): ${V[old,check]}. Each tool copies it into its own empty bucket at concurrency $CONCURRENCY: \`rclone copy :s3:old :s3:new\`, and \`fedicache backfill\` with the new bucket as s3 and the old one in fallback.stores (same endpoint and keys)."
  echo
  echo "| tool | objects | seconds | files/s | server-side copy | peak RSS MiB | CPU s | CPU s / 1,000 files | server CPU s | server CPU s / 1,000 files | requests | rerun seconds | rerun requests | rerun peak RSS MiB | time / fedicache's | bucket check |"
  echo "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  b2b_row "rclone copy" rclone-b2b
  b2b_row "fedicache backfill" fedicache-b2b
  echo
  echo "Server-side copy: yes when the log shows CopyObject and no GetObject of the old bucket. Requests: to both buckets (old:Op for the old one). Bucket check: as above, every ETag included."
  if [ "$ACLS" = 1 ]; then
    echo "ACLs: versitygw keeps object ACLs here, but this run does not check that private objects stay private."
  else
    echo "ACLs: not checked. versitygw (posix backend) answers PutObjectAcl and GetObjectAcl of objects with 501 NotImplemented (it keeps bucket ACLs only), so no object of the old bucket can be made private; fedicache reads that as a store without ACLs and gives every copy s3.acl."
  fi
  echo
  if [ "$RERUN_FILES" -gt 0 ]; then
    echo "## Rerun of a finished volume of $RERUN_FILES files"
    echo
    echo "$RERUN_FILES tiny files ($(mb "$RERUN_BYTES") MB) in Mastodon's layout, written in ${RERUN_GEN_SECONDS} s straight into versitygw's bucket directory with their ETags, which is also the volume: the bucket holds every file, so no run may copy anything. The first run lists the whole bucket and keeps the record of its ranges; the rerun trusts the record where the volume is unchanged."
    echo
    echo "| fedicache backfill | files | seconds | peak RSS MiB | CPU s | server CPU s | requests | summary |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    t=fedicache-rerun,first
    echo "| first run, listing the bucket | $RERUN_FILES | ${V[$t,seconds]} | ${V[$t,rss]} | ${V[$t,cpu]} | ${V[$t,gwcpu]} | ${V[$t,requests]} | $RERUN_FIRST_SUMMARY |"
    t=fedicache-rerun,rerun
    echo "| rerun, on the record | $RERUN_FILES | ${V[$t,seconds]} | ${V[$t,rss]} | ${V[$t,cpu]} | ${V[$t,gwcpu]} | ${V[$t,requests]} | $RERUN_SUMMARY |"
    echo
  fi
  echo "Requests by operation:"
  echo
  for t in "${RUNS[@]}"; do
    [ "$t" != old ] || continue
    echo "- $t: copy ${V[$t,copy,ops]:-none}; rerun ${V[$t,rerun,ops]:-none}"
  done
  [ "$RERUN_FILES" -eq 0 ] || echo "- fedicache, $RERUN_FILES files: first run ${V[fedicache-rerun,first,ops]}; rerun ${V[fedicache-rerun,rerun,ops]}"
  echo
  echo "## Targets"
  echo
  speedup=$(ratio "${V[aws,copy,seconds]}" "${V[fedicache,copy,seconds]}")
  verdict=MISS
  ge "${speedup%x}" "$TARGET_SPEEDUP" && verdict=PASS
  echo "- $verdict fedicache >= ${TARGET_SPEEDUP}x faster than aws s3 sync: ${speedup} (${V[aws,copy,seconds]} s vs ${V[fedicache,copy,seconds]} s)"
  speedup=$(ratio "${V[rclone,copy,seconds]}" "${V[fedicache,copy,seconds]}")
  verdict=MISS
  ge "${speedup%x}" "$TARGET_RCLONE" && verdict=PASS
  echo "- $verdict fedicache >= ${TARGET_RCLONE}x faster than rclone copy (the volume): ${speedup} (${V[rclone,copy,seconds]} s vs ${V[fedicache,copy,seconds]} s); CPU per 1,000 files: fedicache $(per_thousand "${V[fedicache,copy,cpu]}" "$FILES") s, rclone $(per_thousand "${V[rclone,copy,cpu]}" "$FILES") s, the server $(per_thousand "${V[fedicache,copy,gwcpu]}" "$FILES") s under fedicache and $(per_thousand "${V[rclone,copy,gwcpu]}" "$FILES") s under rclone"
  echo "- (no target) old bucket to new bucket, rclone's time / fedicache's: $(ratio "${V[rclone-b2b,copy,seconds]}" "${V[fedicache-b2b,copy,seconds]}") (${V[rclone-b2b,copy,seconds]} s vs ${V[fedicache-b2b,copy,seconds]} s); rerun ${V[rclone-b2b,rerun,seconds]} s vs ${V[fedicache-b2b,rerun,seconds]} s, fedicache's summary says copied $FC_B2B_COPIED"
  worst=${V[fedicache,copy,rss]}
  rss_note="${V[fedicache,copy,rss]} MiB at $FILES files"
  for t in fedicache fedicache-large fedicache-b2b fedicache-rerun; do
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
  [[ ${V[fedicache,rerun,ops]} != *"PutObject "* && ${V[fedicache,rerun,ops]} != *"UploadPart "* &&
    $FC_RERUN_COPIED == "0 files, 0 B" ]] && verdict=PASS
  echo "- $verdict fedicache's rerun uploads nothing: its summary says copied $FC_RERUN_COPIED; requests ${V[fedicache,rerun,ops]}"
  if [ "$RERUN_FILES" -gt 0 ]; then
    t=fedicache-rerun,rerun
    verdict=MISS
    if ge "$TARGET_RERUN_SECONDS" "${V[$t,seconds]}" && ! ge "${V[$t,rss]}" "$TARGET_RSS_MIB" &&
      [[ $RERUN_SUMMARY == "copied: 0 files, 0 B;"* && $RERUN_SUMMARY == *"failed: 0" ]]; then verdict=PASS; fi
    echo "- $verdict fedicache's rerun of $RERUN_FILES files < $TARGET_RERUN_SECONDS s, peak RSS < $TARGET_RSS_MIB MiB, nothing copied: ${V[$t,seconds]} s, ${V[$t,rss]} MiB; $RERUN_SUMMARY"
  fi
  if [ -s "$WORK/logs/fedicache-cpu.pprof" ]; then
    echo
    echo "## CPU profile of fedicache's volume copy ($PROFILE s)"
    echo
    echo '```'
    go tool pprof -top -nodecount=25 "$WORK/fedicache" "$WORK/logs/fedicache-cpu.pprof" 2>/dev/null | sed -n '/^Showing\|^ *flat/,$p'
    echo '```'
  fi
}

report | tee "$RESULTS"
log "results written to ${RESULTS#"$REPO"/}"
