#!/usr/bin/env bash
# bench/cluster.sh: three fedicache replicas in front of one real S3 server, with and without
# the peer fill (cluster.fill), as a Service spreads requests: every cold key is asked of every
# replica, then once more (the second round: hits at the owners, the owners' copies elsewhere).
#
# Run it from the repository root:   bench/cluster.sh
#
# The replicas run in network namespaces of their own (as root, with ip(8)), each behind a veth
# pair on a bridge (10.77.0.2-4; the bucket's side at 10.77.0.1), or, where namespaces cannot be
# made, on the loopback addresses 127.0.0.2-4; the same admin port on each, and they find each
# other through cluster.peers listing those addresses. One counting proxy in front of the bucket (versitygw, installed with
# go install when missing) counts the GETs and the bytes it sent. Per mode it prints the bucket
# GETs per key, the MB the bucket sent, each round's latency (p50, p99; and the p50 of the keys
# each replica owns apart from those another owns: what the hop to the owner adds, against the
# same keys with the peer fill off) and the replicas' CPU time per request; the table also goes to bench/cluster-results-latest.md
# (BENCH_RESULTS moves it). Everything it starts is stopped at the end, Ctrl-C included.
#
# Settings (environment; defaults in brackets):
#   BENCH_SMALL [3000]        cold objects (thumbnails, avatars, emoji: 5-60 KB)
#   BENCH_CONNECTIONS [16]    connections of each replica's walk
#   BENCH_NETNS [auto]        1: network namespaces (fails without them), 0: loopback addresses
#   BENCH_SEED [1]            BENCH_KEEP [0] (1 keeps the work directory)
#   BENCH_RESULTS [bench/cluster-results-latest.md]
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
SMALL=${BENCH_SMALL:-3000}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
SEED=${BENCH_SEED:-1}
RESULTS=${BENCH_RESULTS:-$REPO/bench/cluster-results-latest.md}
BUCKET=mastodon-media
VERSITYGW_VERSION=v1.8.0
IPS=(127.0.0.2 127.0.0.3 127.0.0.4)
BUCKET_HOST=127.0.0.1 # where the replicas reach the counting proxy
NETNS=${BENCH_NETNS:-auto}
NS_PREFIX=fcb$$ # namespaces fcbPID-0..2, bridge fcbPIDbr, veths fcbPIDv0..2

# netns_up: the three namespaces on a bridge; false when they cannot be made.
netns_up() {
  [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null || return 1
  ip link add "${NS_PREFIX}br" type bridge 2>/dev/null || return 1
  ip addr add 10.77.0.1/24 dev "${NS_PREFIX}br" && ip link set "${NS_PREFIX}br" up || return 1
  local i
  for i in 0 1 2; do
    ip netns add "$NS_PREFIX-$i" &&
      ip link add "${NS_PREFIX}v$i" type veth peer name eth0 netns "$NS_PREFIX-$i" &&
      ip link set "${NS_PREFIX}v$i" master "${NS_PREFIX}br" && ip link set "${NS_PREFIX}v$i" up &&
      ip -n "$NS_PREFIX-$i" addr add "10.77.0.$((i + 2))/24" dev eth0 &&
      ip -n "$NS_PREFIX-$i" link set eth0 up && ip -n "$NS_PREFIX-$i" link set lo up || return 1
  done
}

# netns_down: remove what netns_up made.
netns_down() {
  local i
  for i in 0 1 2; do ip netns del "$NS_PREFIX-$i" 2>/dev/null || true; done
  ip link del "${NS_PREFIX}br" 2>/dev/null || true
}

# cleanup_all: stop everything, then take the namespaces down, then lib.sh's cleanup.
cleanup_all() {
  local status=$? name
  for name in "${!PIDS[@]}"; do stop "$name"; done
  netns_down
  (exit "$status")
  cleanup
}
TOKEN=bench-cluster-token

command -v go >/dev/null || die "go is needed (the version in go.mod)"
for tool in curl awk; do command -v "$tool" >/dev/null || die "$tool is needed"; done
install_versitygw "$VERSITYGW_VERSION"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedicache-cluster.XXXXXX")
mkdir -p "$WORK"/{bin,logs,keys,volume,gw,fc}
declare -A PIDS=()
declare -A R=()
trap cleanup_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building fedicache and the helpers"
go build -trimpath -o "$WORK/fedicache" ./cmd/fedicache
for helper in gen countproxy load; do
  go build -trimpath -o "$WORK/bin/$helper" "./bench/$helper"
done

# same_port: a port free on the three replicas' addresses (their admin listeners share it).
same_port() {
  local port ip ok
  for _ in $(seq 100); do
    port=$(free_port)
    ok=1
    for ip in "${IPS[@]}"; do
      if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then ok=0; fi
    done
    [ "$ok" = 1 ] && { echo "$port"; return; }
  done
  die "no port free on ${IPS[*]}"
}
GW_PORT=$(free_port)
COUNT_PORT=$(free_port)
if [ "$NETNS" != 0 ] && netns_up; then
  IPS=(10.77.0.2 10.77.0.3 10.77.0.4)
  BUCKET_HOST=10.77.0.1
  log "replicas in network namespaces $NS_PREFIX-0..2 (10.77.0.2-4)"
else
  [ "$NETNS" != 1 ] || die "BENCH_NETNS=1: network namespaces could not be made (root and ip(8) needed)"
  netns_down
  log "replicas on loopback addresses 127.0.0.2-4 (no network namespaces here)"
fi
PORT=$(same_port)
ADMIN_PORT=$(same_port)
MEMBERS="${IPS[0]}:$ADMIN_PORT,${IPS[1]}:$ADMIN_PORT,${IPS[2]}:$ADMIN_PORT"
COUNTS=http://$BUCKET_HOST:$COUNT_PORT/counts

ACCESS_KEY=bench
SECRET_KEY=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
start_counted_bucket "$GW_PORT" "$COUNT_PORT" "$ACCESS_KEY" "$SECRET_KEY" "$BUCKET_HOST"

log "generating $SMALL cold objects (seed $SEED)"
AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY \
  run gen "$WORK/bin/gen" -endpoint "http://127.0.0.1:$GW_PORT" -bucket "$BUCKET" -seed "$SEED" \
  -volume "$WORK/volume" -keys "$WORK/keys" -hot 1 -small "$SMALL" -originals 0 -big-bytes 0
KEYS=$(wc -l <"$WORK/keys/cold.txt")

# start_replicas FILL: the three replicas, empty caches, cluster.fill FILL.
start_replicas() {
  local i ip
  for i in 0 1 2; do
    ip=${IPS[$i]}
    mkdir -p "$WORK/fc/$1-$i"
    cat >"$WORK/fc/$1-$i.yaml" <<EOF
listen: $ip:$PORT
admin_listen: $ip:$ADMIN_PORT
s3:
  endpoint: http://$BUCKET_HOST:$COUNT_PORT
  region: us-east-1
  bucket: $BUCKET
  force_path_style: true
  access_key_id: $ACCESS_KEY
  secret_access_key: $SECRET_KEY
fallback:
  dir: $WORK/volume
cluster:
  peers: "${IPS[0]},${IPS[1]},${IPS[2]}"
  fill: $1
admin:
  token: $TOKEN
cache:
  memory:
    max_bytes: 256MiB
  disk:
    dir: $WORK/fc/$1-$i
    max_bytes: 4GiB
log:
  level: warn
EOF
    if [ "$BUCKET_HOST" = 10.77.0.1 ]; then
      start "fc$i" ip netns exec "$NS_PREFIX-$i" "$WORK/fedicache" serve --config "$WORK/fc/$1-$i.yaml"
    else
      start "fc$i" "$WORK/fedicache" serve --config "$WORK/fc/$1-$i.yaml"
    fi
  done
  for i in 0 1 2; do
    for _ in $(seq 300); do curl -fso /dev/null "http://${IPS[$i]}:$ADMIN_PORT/readyz" && break; sleep 0.1; done
    curl -fso /dev/null "http://${IPS[$i]}:$ADMIN_PORT/readyz" || die "replica $i did not become ready (logs in $WORK/logs)"
  done
}

stop_replicas() { local i; for i in 0 1 2; do stop "fc$i"; done; }

# cpu_all: the CPU ticks of the three replicas.
cpu_all() { echo $(($(cpu_ticks "${PIDS[fc0]}") + $(cpu_ticks "${PIDS[fc1]}") + $(cpu_ticks "${PIDS[fc2]}"))); }

# round NAME: every key asked of every replica at once (one walk per replica); prints
# "requests p50_ms p99_ms cpu_us_per_request errors own_p50_ms peer_p50_ms": own and peer are
# the keys each replica owns and those another owns (asked of their owner with the peer fill,
# of the bucket without), each the mean over the three replicas of their p50.
round() {
  local i pids=() requests=0 errors=0 p50=0 p99=0 before after own=0 peer=0
  before=$(cpu_all)
  for i in 0 1 2; do
    "$WORK/bin/load" walk -base "http://${IPS[$i]}:$PORT" -list "$WORK/keys/cold.txt" -c "$CONNECTIONS" -max 10m \
      -members "$MEMBERS" -self "${IPS[$i]}:$ADMIN_PORT" >"$WORK/logs/$1-$i.txt" 2>&1 &
    pids+=($!)
  done
  for i in 0 1 2; do wait "${pids[$i]}" || die "walk $1 on replica $i failed: $(tail -n 3 "$WORK/logs/$1-$i.txt")"; done
  after=$(cpu_all)
  for i in 0 1 2; do
    parse_result "$(grep '^RESULT ' "$WORK/logs/$1-$i.txt")"
    requests=$((requests + R[requests]))
    errors=$((errors + R[errors]))
    p50=$(awk -v a="$p50" -v b="${R[p50_us]}" 'BEGIN { print (b > a ? b : a) }')
    p99=$(awk -v a="$p99" -v b="${R[p99_us]}" 'BEGIN { print (b > a ? b : a) }')
    own=$((own + R[own_p50_us]))
    peer=$((peer + R[peer_p50_us]))
  done
  awk -v n="$requests" -v a="$p50" -v b="$p99" -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v e="$errors" \
    -v o="$own" -v q="$peer" \
    'BEGIN { printf "%d %.2f %.2f %.0f %d %.2f %.2f\n", n, a / 1000, b / 1000, (n > 0 ? t / hz * 1e6 / n : 0), e, o / 3000, q / 3000 }'
}

# bucket_gets: "GETS MB" of object GETs the counting proxy saw since the last call.
bucket_gets() {
  curl -fs "$COUNTS?reset=1" | awk '$3 !~ /\?/ { g += $1; b += $2 } END { printf "%d %.1f\n", g, b / 1e6 }'
}

declare -A V=()
for fill in false true; do
  log "cluster.fill: $fill: three replicas, $KEYS cold keys asked of each"
  start_replicas "$fill"
  bucket_gets >/dev/null
  # Each step writes its figures to a file, read after: a round run in this shell (not in a
  # process substitution) waits for its walks where Ctrl-C interrupts it.
  round "$fill-cold" >"$WORK/round.txt"
  read -r V[$fill,n1] V[$fill,p50_1] V[$fill,p99_1] V[$fill,cpu1] V[$fill,err1] V[$fill,own1] V[$fill,peer1] <"$WORK/round.txt"
  bucket_gets >"$WORK/gets.txt"
  read -r V[$fill,gets1] V[$fill,mb1] <"$WORK/gets.txt"
  round "$fill-again" >"$WORK/round.txt"
  read -r V[$fill,n2] V[$fill,p50_2] V[$fill,p99_2] V[$fill,cpu2] V[$fill,err2] V[$fill,own2] V[$fill,peer2] <"$WORK/round.txt"
  bucket_gets >"$WORK/gets.txt"
  read -r V[$fill,gets2] V[$fill,mb2] <"$WORK/gets.txt"
  stop_replicas
done

{
  echo "# fedicache: three replicas, with and without the peer fill"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $KEYS cold objects (5-60 KB), each asked of each of 3 replicas at once ($CONNECTIONS connections per replica), then once more; versitygw $VERSITYGW_VERSION behind a counting proxy."
  echo
  echo "| cluster.fill | round | requests | bucket GETs | GETs per key | bucket MB | p50 ms (slowest replica) | p99 ms | p50 ms, keys it owns | p50 ms, keys others own | CPU us/req (3 replicas) | errors |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for fill in false true; do
    for r in 1 2; do
      echo "| $fill | $([ "$r" = 1 ] && echo cold || echo again) | ${V[$fill,n$r]} | ${V[$fill,gets$r]} | $(awk -v g="${V[$fill,gets$r]}" -v k="$KEYS" 'BEGIN { printf "%.2f", g / k }') | ${V[$fill,mb$r]} | ${V[$fill,p50_$r]} | ${V[$fill,p99_$r]} | ${V[$fill,own$r]} | ${V[$fill,peer$r]} | ${V[$fill,cpu$r]} | ${V[$fill,err$r]} |"
    done
  done
} | tee "$RESULTS"
log "results written to $RESULTS"
