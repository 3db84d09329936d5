#!/usr/bin/env bash
# feed_bench.sh -- the feed benchmarks of issue 3; seeds its own data and
# prints tables. Rerunnable; everything on 127.0.0.1; every loop bounded.
#
#   1. fanout_bench: one post to FOLLOWERS (default 1,000,000) followers,
#      deliveries/s against a RocksDB fillrandom ceiling (in-process), and
#      many small fan-outs into homes at their cap.
#   2. A real region (--rate-limit 0), seeded through the API with USERS
#      users who follow FOLLOWS others and post POSTS times each; then
#      wrk -t2 -c64 -dDURATION on
#        GET /health;
#        GET /v1/timeline?limit=20 (a page of 20 posts), rotating real tokens;
#        POST /v1/posts as the same users (each post fans out to ~FOLLOWS
#          followers), the fan-out queue depth sampled every 0.5 s;
#        POST /v1/posts as users nobody follows (the write path alone);
#        POST /v1/posts paced to what the fan-out workers sustained in the
#          unpaced run (x 0.8), to show the queue staying bounded.
#      Besides requests/s, each row shows the region's CPU time per request
#      (utime + stime from /proc), which a busy machine disturbs less.
#
# usage: tests/bench/feed_bench.sh   (after deploy/build)
# env:   FOLLOWERS USERS FOLLOWS POSTS DURATION WRK_THREADS WRK_CONNS
#        SKIP_FANOUT=1 (only the HTTP part)  KEEP=1 (keep the work directory)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${DRIFTFEED_BIN:-$root/build/driftfeed}"
fanout_bin="${FANOUT_BENCH_BIN:-$root/build/tests/fanout_bench}"
FOLLOWERS="${FOLLOWERS:-1000000}"
USERS="${USERS:-1000}"
FOLLOWS="${FOLLOWS:-40}"
POSTS="${POSTS:-12}"
DURATION="${DURATION:-10s}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNS="${WRK_CONNS:-64}"
secs="${DURATION%s}"
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "feed_bench: DURATION is seconds, like 10s" >&2; exit 2; }

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "feed_bench: $tool is missing (deploy/install-deps)" >&2; exit 2; }
done
[[ -x "$bin" && -x "$fanout_bin" ]] || { echo "feed_bench: build first (deploy/build)" >&2; exit 2; }

work="$(mktemp -d /tmp/feed-bench-XXXXXX)"
pid=""
sampler=""
cleanup() {
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null || true
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then echo "feed_bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== feed benchmark on $(nproc) CPUs; load average now: $(loadavg)"

# ---- 1. Fan-out throughput -------------------------------------------------
if [[ "${SKIP_FANOUT:-0}" != 1 ]]; then
  echo "\$ fanout_bench --followers $FOLLOWERS"
  "$fanout_bin" --followers "$FOLLOWERS" --dir "$work"
  echo
fi

# ---- 2. A real region ------------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$bin" --region bench --port "$port" --bind 127.0.0.1 --data "$work/region" --rate-limit 0 \
  --log-level warn >"$work/region.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "$url/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "feed_bench: the region exited; see $work/region.log" >&2; exit 1; }
  sleep 0.1
done
curl -fs "$url/health" >/dev/null || { echo "feed_bench: the region did not come up" >&2; exit 1; }

python3 "$here/seed_timelines.py" --port "$port" --users "$USERS" --follows "$FOLLOWS" \
  --posts "$POSTS" --out "$work/tokens.txt" --solo "$USERS" --solo-out "$work/solo.txt"

depth() { curl -s "$url/v1/replication" | grep -o '"fanout_depth":[0-9]*' | cut -d: -f2; }
deliveries() { curl -s "$url/metrics" | awk '$1 == "driftfeed_fanout_deliveries_total" {print $2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tck=$(getconf CLK_TCK)
py() { python3 -c "import sys; a = sys.argv[1:]; print($1)" "${@:2}"; }

# Samples the queue depth every 0.5 s into $work/depth-NAME.txt (bounded).
start_sampler() {
  ( for _ in $(seq 1 $((secs * 2 + 4))); do depth || true; sleep 0.5; done ) >"$work/depth-$1.txt" &
  sampler=$!
}
stop_sampler() {
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  sampler=""
  sort -n "$work/depth-$1.txt" | tail -1
}
# Waits (bounded) until the queue is empty; prints the seconds it took.
drain() {
  local t0 i
  t0=$(date +%s.%N)
  for i in $(seq 1 1200); do
    [[ "$(depth)" == 0 ]] && break
    sleep 0.1
  done
  [[ "$(depth)" == 0 ]] || echo "feed_bench: the fan-out queue did not drain" >&2
  py 'f"{float(a[1]) - float(a[0]):.1f}"' "$t0" "$(date +%s.%N)"
}

# Runs wrk as NAME; sets rps[NAME], cpu[NAME] (region CPU-us per request).
declare -A rps cpu
run_wrk() {
  local name="$1" c0 c1 out; shift
  c0=$(cpu_ticks)
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$DURATION" --latency "$@" >"$work/wrk-$name.txt" 2>&1
  c1=$(cpu_ticks)
  out="$work/wrk-$name.txt"
  rps[$name]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  local n; n=$(awk '/requests in/ {print $1}' "$out")
  cpu[$name]=$(py 'f"{(int(a[1]) - int(a[0])) / int(a[2]) * 1e6 / max(int(a[3]), 1):.1f}"' "$c0" "$c1" "$tck" "$n")
}
non2xx() { awk '/Non-2xx or 3xx responses:/ {print $5}' "$work/wrk-$1.txt" | grep . || echo 0; }
p99() { awk '$1 == "99%" {print $2}' "$work/wrk-$1.txt"; }

run_wrk health "$url/health"
run_wrk timeline -s "$here/timeline.lua" "$url" -- "$work/tokens.txt"

d0=$(deliveries)
start_sampler post
run_wrk post -s "$here/post.lua" "$url" -- "$work/tokens.txt"
left_post=$(depth)
max_post=$(stop_sampler post)
d1=$(deliveries)
drain_post=$(drain)
d2=$(deliveries)
# What the workers sustained: deliveries during the run and the drain.
per_s=$(py 'f"{(int(a[1]) - int(a[0])) / (float(a[2]) + float(a[3])):.0f}"' "$d0" "$d2" "$secs" "$drain_post")
per_post=$(py 'f"{(int(a[1]) - int(a[0])) / max(float(a[2]) * float(a[3]), 1):.1f}"' "$d0" "$d2" "${rps[post]}" "$secs")

start_sampler solo
run_wrk solo -s "$here/post.lua" "$url" -- "$work/solo.txt"
max_solo=$(stop_sampler solo)
drain >/dev/null

paced=$(py 'f"{0.8 * float(a[0]) / float(a[1]):.0f}"' "$per_s" "$per_post")
start_sampler paced
DF_POST_RATE="$paced" DF_CONNS="$WRK_CONNS" run_wrk paced -s "$here/post.lua" "$url" -- "$work/tokens.txt"
left_paced=$(depth)
max_paced=$(stop_sampler paced)
drain_paced=$(drain)

ratio() { py 'f"{float(a[0]) / float(a[1]):.2f}"' "$1" "$2"; }
verdict() { py '"met" if float(a[0]) >= float(a[1]) else "NOT met"' "$1" "$2"; }

echo
echo "HTTP: wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION, one region, 127.0.0.1, --rate-limit 0;"
echo "      $USERS users, each following $FOLLOWS and with $POSTS posts (homes of ~$((FOLLOWS * POSTS)) posts)"
row() { printf '| %-46s | %10s | %9s | %9s | %7s | %9s |\n' "$@"; }
row "run" "requests/s" "/ health" "CPU-us/req" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------------------------------" "------------" \
  "-----------" "-----------" "---------" "-----------"
for name in health timeline post solo paced; do
  case $name in
    health) label="GET /health" ;;
    timeline) label="GET /v1/timeline?limit=20" ;;
    post) label="POST /v1/posts (fans out to ~$FOLLOWS)" ;;
    solo) label="POST /v1/posts by users nobody follows" ;;
    paced) label="POST /v1/posts paced to $paced/s (fans out)" ;;
  esac
  row "$label" "${rps[$name]}" "$(ratio "${rps[$name]}" "${rps[health]}")" "${cpu[$name]}" \
    "$(p99 $name)" "$(non2xx $name)"
done
echo
row2() { printf '| %-62s | %12s |\n' "$@"; }
row2 "fan-out queue" "value"
printf '|%s|%s|\n' "----------------------------------------------------------------" "--------------"
row2 "unpaced posts: max depth sampled / depth when wrk stopped" "$max_post / $left_post"
row2 "unpaced posts: seconds to drain afterwards" "$drain_post"
row2 "deliveries per post / deliveries per second sustained" "$per_post / $per_s"
row2 "posts by users nobody follows: max depth sampled" "$max_solo"
row2 "paced posts: max depth sampled / depth when wrk stopped" "$max_paced / $left_paced"
row2 "paced posts: seconds to drain afterwards" "$drain_paced"
echo
echo "targets: timeline/health >= 0.35: $(verdict "$(ratio "${rps[timeline]}" "${rps[health]}")" 0.35);" \
  "post/health >= 0.30 with the queue bounded: unpaced $(ratio "${rps[post]}" "${rps[health]}")" \
  "(queue grew to $max_post), paced $(ratio "${rps[paced]}" "${rps[health]}") (max depth $max_paced)"
echo "load average now: $(loadavg)"
