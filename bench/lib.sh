# shellcheck shell=bash disable=SC2004,SC2034 # PIDS and R are associative arrays of the including script
# Shared helpers of the bench scripts, sourced by them: logging, installing, starting and
# stopping processes by PID, ports, and number formatting. The including script declares
# WORK (its work directory) and PIDS (an associative array: name -> PID) before it uses them.

USED_PORTS=" " # ports free_port has handed out

log() { printf '== %s %s\n' "$(date +%T)" "$*" >&2; }

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing $* with apt-get"
  as_root apt-get install -y "$@" >&2 ||
    { as_root apt-get update >&2 && as_root apt-get install -y "$@" >&2; }
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local name
  for name in "${!PIDS[@]}"; do stop "$name"; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}

# start NAME COMMAND...: run COMMAND in the background, output added to logs/NAME.log.
start() {
  local name=$1
  shift
  echo "== $(date +%T) $*" >>"$WORK/logs/$name.log"
  "$@" >>"$WORK/logs/$name.log" 2>&1 &
  PIDS[$name]=$!
}

# run NAME COMMAND...: run COMMAND and wait for it with the wait builtin, so that Ctrl-C or a
# TERM reaches the trap at once rather than when COMMAND ends; cleanup then stops COMMAND by
# its PID.
run() {
  local name=$1 status=0
  shift
  "$@" &
  PIDS[$name]=$!
  wait "${PIDS[$name]}" || status=$?
  unset "PIDS[$name]"
  return "$status"
}

# wait_port NAME PORT: wait up to 30 s until something listens on 127.0.0.1:PORT.
wait_port() {
  local i
  for i in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    kill -0 "${PIDS[$1]}" 2>/dev/null || break
    [ "$i" -lt 300 ] && sleep 0.1
  done
  tail -n 20 "$WORK/logs/$1.log" >&2
  die "$1 did not listen on port $2 (log above)"
}

# parse_result LINE: the key=value pairs of a "RESULT k=v ..." line, into R (declared by the
# including script as an associative array).
parse_result() {
  R=()
  local kv
  for kv in ${1#RESULT }; do R[${kv%%=*}]=${kv#*=}; done
}

# ratio A B: A/B as "1.23x", "-" when B is 0 or either is no number (such as "-").
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a !~ /[0-9]/ || b !~ /[0-9]/) print "-"; else printf "%.2fx", a / b }'
}

# ge A B: true when A >= B (decimals).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

free_port() {
  local port
  while :; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 10000))
    case $USED_PORTS in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      USED_PORTS+="$port "
      echo "$port"
      return
    fi
  done
}

# free_bytes DIR: the bytes free for an unprivileged user on DIR's file system.
free_bytes() { df -P -B1 "$1" | awk 'NR == 2 { print $4 }'; }

# tree_of PID: PID and its descendants, children first.
tree_of() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do tree_of "$child"; done
  echo "$1"
}

# cpu_ticks PID: the CPU time PID and its descendants have used so far, in clock ticks
# (getconf CLK_TCK a second): the user and system time of each (fields 14 and 15 of
# /proc/PID/stat), and that of the children each has reaped (fields 16 and 17), so that a
# process that ends during a measurement still counts.
cpu_ticks() {
  local pid ticks=0 t
  for pid in $(tree_of "$1"); do
    # Counted after the command name, which may hold spaces.
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true)
    ticks=$((ticks + ${t:-0}))
  done
  echo "$ticks"
}

# stop NAME: stop the process started under NAME and its children (a tool run under GNU time
# is time's child): TERM, then KILL after 10 s; reap it.
stop() {
  local pid=${PIDS[$1]:-} p
  [ -n "$pid" ] || return 0
  unset "PIDS[$1]"
  local pids
  pids=$(tree_of "$pid")
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

# install_versitygw VERSION: set VERSITYGW to the versitygw binary, installing VERSION with go
# install when it is missing.
install_versitygw() {
  local gobin
  gobin=$(go env GOBIN)
  gobin=${gobin:-$(go env GOPATH)/bin}
  VERSITYGW=$gobin/versitygw
  if [ ! -x "$VERSITYGW" ]; then
    log "installing versitygw $1 with go install"
    go install "github.com/versity/versitygw/cmd/versitygw@$1"
  fi
}

# start_counted_bucket GW_PORT COUNT_PORT ACCESS_KEY SECRET_KEY [HOST]: versitygw (posix, in
# $WORK/gw) on 127.0.0.1:GW_PORT, and the counting proxy in front of it on HOST:COUNT_PORT
# (HOST 127.0.0.1 by default; $WORK/bin/countproxy), both up when it returns.
start_counted_bucket() {
  local host=${5:-127.0.0.1}
  log "starting versitygw on 127.0.0.1:$1 and the counting proxy on $host:$2"
  ROOT_ACCESS_KEY=$3 ROOT_SECRET_KEY=$4 \
    start versitygw "$VERSITYGW" --port "127.0.0.1:$1" --quiet --keep-alive posix "$WORK/gw"
  start countproxy "$WORK/bin/countproxy" -listen "$host:$2" -target "http://127.0.0.1:$1"
  wait_port versitygw "$1"
  local i
  for i in $(seq 300); do
    curl -fso /dev/null "http://$host:$2/counts" && return 0
    kill -0 "${PIDS[countproxy]}" 2>/dev/null || break
    sleep 0.1
  done
  die "the counting proxy did not come up (log: $WORK/logs/countproxy.log)"
}

# wait_for_quiet: wait until no test run or CI job (go test, .ci/run) shares the machine, so
# that nothing else takes the cores during a timed part; logs the load before it returns.
wait_for_quiet() {
  local said=0
  while pgrep -f 'go test|\.ci/run' >/dev/null; do
    [ "$said" = 1 ] || log "waiting for a go test or .ci/run to end before timing"
    said=1
    sleep 5
  done
  log "load: $(uptime | sed 's/.*load average/load average/')"
}

# log_lines LOG: the lines of the access log LOG so far, once the server has stopped adding to
# it (a line may be written just after its answer went out).
log_lines() {
  local n m
  n=$(wc -l <"$1")
  while sleep 0.2; m=$(wc -l <"$1"); [ "$m" != "$n" ]; do n=$m; done
  echo "$n"
}

# requests LOG FROM BUCKET [SOURCE]: "TOTAL BREAKDOWN": the requests to BUCKET (and to SOURCE,
# whose operations are named "SOURCE:Op") in versitygw's access log LOG after line FROM, and
# their count by operation, most frequent first ("PutObject 10000, ListObjectsV2 11"). Requests
# for keys under fedicache's state prefix (_fedicache/: its progress records) are named
# "Op[_fedicache/]", apart from those of media.
requests() {
  local ops
  ops=$(tail -n "+$(($2 + 1))" "$1" | awk -v b="$3" -v s="${4:-}" '
    $2 == b || (s != "" && $2 == s) {
      sub(/^s3_/, "", $8)
      print ($2 == s ? s ":" : "") $8 (index($9, "_fedicache/") == 1 ? "[_fedicache/]" : "")
    }' |
    sort | uniq -c | sort -rn)
  awk '{ n += $1; ops = ops (NR > 1 ? ", " : "") $2 " " $1 } END { print n + 0, ops }' <<<"$ops"
}

# cpu_seconds NAME: the CPU time (user + system) the process started under NAME and its
# children have used so far, in seconds (CLK_TCK ticks a second).
cpu_seconds() {
  awk -v t="$(cpu_ticks "${PIDS[$1]}")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# per_second N SECONDS: N / SECONDS, one decimal.
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }

# per_thousand SECONDS N: SECONDS per 1,000 of N, two decimals.
per_thousand() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.2f", (n > 0 ? s * 1000 / n : 0) }'; }
