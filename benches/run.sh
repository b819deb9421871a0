#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md, each run side by side with its peer in one go.
#   benches/run.sh            all
#   benches/run.sh decode     decode speed vs ffmpeg and mpg123
#   benches/run.sh playback   real-time playback RSS/CPU vs snapclient, same PulseAudio sink
#   benches/run.sh cms        CMS API latency at 500 req/s vs nginx serving the same bodies
#   benches/run.sh fleet      1,000 nodes with a year of health history: fleet page, charts,
#                             quarterly report and /metrics vs nginx; the history's size
#   benches/run.sh sync       3 nodes behind impairing proxies: spread per 1-s window and each
#                             window's match with the source, on a clean link, after the
#                             clocks' 3-min acquisition and in their steady state (~20 min)
#   benches/run.sh reach      100 real nodes: emergency API call to every node confirmed playing
#   benches/run.sh content    GET /content/{sha256} (5 MB) vs nginx with wrk; 1,000 nodes fetching
#                             a new item at once while the content list is read
#   benches/run.sh swarm [N..] one controller and `speaker-node swarm` fleets of 1,000, 5,000 and
#                             10,000 nodes: time to all online, RSS, CPU under heartbeats and
#                             clock exchanges, schedule change and emergency to every node;
#                             `swarm --mqtt [N..]` the same through a local Mosquitto
#   benches/run.sh chaos [S]  the scripted chaos run (tests/tests/chaos.rs) for S seconds (default
#                             1200: twelve rounds of partitions, SIGKILLs, full disk, clock steps)
#   benches/run.sh play-order rewrite speaker-node/play.order: the functions playing a file
#                             runs, traced by callgrind, which the release link lays out first
# Needs (./loa deps installs the rest): hyperfine, snapserver, snapclient, valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine snapserver snapclient valgrind; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ -n "${missing[*]:-}" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The release binaries, for the benchmarks that run them (sync runs the tests' debug build,
# cms builds its own controller).
build() { cargo build --release -q --workspace --bins; }
node=$PWD/target/release/speaker-node
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# Inputs: the news sample looped to 10 minutes, as a 128 kbps MP3 and as FLAC (44.1 kHz).
ff -stream_loop 74 -i audio-samples/news.wav -ar 44100 -c:a libmp3lame -b:a 128k "$work/long.mp3"
ff -stream_loop 74 -i audio-samples/news.wav -ar 44100 -c:a flac "$work/long.flac"

# Rounds of a few runs each, the commands taking turns within every round, so a noisy
# neighbour on this shared machine slows all of them alike.
ROUNDS=5
RUNS_PER_ROUND=3

compare() { # name command... : medians over all runs, and the median per-round ratio to ours
  local name=$1; shift
  for r in $(seq "$ROUNDS"); do
    hyperfine -N -w 1 -r "$RUNS_PER_ROUND" --export-json "$work/$name-$r.json" "$@" >/dev/null 2>&1
  done
  python3 - "$work" "$name" "$ROUNDS" <<'PY'
import json, statistics, sys
work, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
per_round = [json.load(open(f"{work}/{name}-{r}.json"))["results"] for r in range(1, rounds + 1)]
for i, first in enumerate(per_round[0]):
    times = [t for res in per_round for t in res[i]["times"]]
    ratios = [statistics.median(res[i]["times"]) / statistics.median(res[0]["times"]) for res in per_round]
    print(f'{statistics.median(times) * 1000:8.1f} ms median   {statistics.median(ratios):5.2f}x ours   {first["command"]}')
PY
}

bench_decode() {
  echo "== decode, 10 min 128 kbps MP3 ($ROUNDS rounds x $RUNS_PER_ROUND runs)"
  compare mp3 \
    "$node decode $work/long.mp3 --output null" \
    "ffmpeg -nostdin -v error -i $work/long.mp3 -f null -" \
    "mpg123 -q -t $work/long.mp3"
  echo "== decode, 10 min FLAC 16-bit 44.1 kHz stereo ($ROUNDS rounds x $RUNS_PER_ROUND runs)"
  compare flac \
    "$node decode $work/long.flac --output null" \
    "ffmpeg -nostdin -v error -threads 1 -i $work/long.flac -f null -" \
    "ffmpeg -nostdin -v error -i $work/long.flac -f null -"
}

# A private PulseAudio with a 48 kHz null sink (paced like a card); ALSA's default -> pulse.
start_pulse() {
  mkdir -p "$work/home/run"
  printf 'pcm.!default { type pulse }\nctl.!default { type pulse }\n' > "$work/home/.asoundrc"
  export HOME=$work/home XDG_RUNTIME_DIR=$work/home/run PULSE_SERVER=unix:$work/home/pulse.sock
  pulseaudio -n --daemonize=no --exit-idle-time=-1 --disable-shm=yes \
    --load="module-null-sink sink_name=out rate=48000 format=s16le channels=2" \
    --load="module-native-protocol-unix auth-anonymous=1 socket=$work/home/pulse.sock" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do pactl info >/dev/null 2>&1 && return; sleep 0.1; done
  echo "pulseaudio did not start" >&2; exit 1
}

# "maxrss_kB cpu_percent" of a finished /usr/bin/time -f '%M %U %S %e' report.
usage() { tail -n 1 "$1" | awk '{ printf "%d kB peak RSS, %.2f %% CPU (%.2f s user+sys over %.1f s)\n", $1, 100*($2+$3)/$4, $2+$3, $4 }'; }

bench_playback() {
  local seconds=60
  start_pulse
  ff -i "$work/long.mp3" -t "$seconds" -c copy "$work/minute.mp3"
  echo "== real-time playback of ${seconds} s of 128 kbps MP3 through PulseAudio"
  order_coverage
  /usr/bin/time -o "$work/ours.time" -f '%M %U %S %e' "$node" play "$work/minute.mp3" --output device
  printf 'speaker-node (pulse)     '; usage "$work/ours.time"
  /usr/bin/time -o "$work/ours-alsa.time" -f '%M %U %S %e' "$node" play "$work/minute.mp3" --output device:alsa:default
  printf 'speaker-node (alsa)      '; usage "$work/ours-alsa.time"

  # snapclient: the same audio from a local snapserver (FLAC transport), same sink via ALSA.
  local port=$((20000 + RANDOM % 20000))
  mkfifo "$work/snapfifo"
  : > "$work/snapserver.conf"
  snapserver -c "$work/snapserver.conf" --server.datadir="$work" --logging.sink=null \
    --http.enabled=false --tcp.enabled=false --stream.bind_to_address=127.0.0.1 --stream.port="$port" \
    --stream.source="pipe://$work/snapfifo?name=default&sampleformat=48000:16:2" &
  pids+=($!)
  sleep 1
  ffmpeg -nostdin -v error -re -i "$work/minute.mp3" -f s16le -ar 48000 -ac 2 - > "$work/snapfifo" &
  pids+=($!)
  /usr/bin/time -o "$work/snap.time" -f '%M %U %S %e' \
    timeout -s INT "$seconds" snapclient -h 127.0.0.1 -p "$port" --player alsa -s default --logsink null || true
  printf 'snapclient (alsa)        '; usage "$work/snap.time"
}

# How many of play.order's functions the release binary still has (a compiler or dependency
# update renames some; below ~90 %, run `benches/run.sh play-order` again).
order_coverage() {
  local listed found
  listed=$(wc -l < speaker-node/play.order)
  found=$(nm "$node" | awk '{ print $NF }' | sort -u | comm -12 - <(sort -u speaker-node/play.order) | wc -l)
  echo "play.order: $found of $listed functions found in the binary"
}

# The functions of the speaker-node binary that `play` runs on each sample format, from
# callgrind traces: those every format runs first, then each format's own.
bench_play_order() {
  start_pulse
  local formats=(mp3 flac ogg m4a wav) traces=()
  for f in "${formats[@]}"; do
    ff -i audio-samples/news.wav -t 4 -ar 44100 "$work/s44.$f"
    traces+=("$work/s44.$f")
  done
  ff -i audio-samples/news.wav -t 4 -ar 48000 "$work/s48.mp3"
  traces+=("$work/s48.mp3")
  for t in "${traces[@]}"; do
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$t.cg" \
      "$node" play "$t" --output device >/dev/null 2>&1
  done
  python3 - "$node" "${traces[@]/%/.cg}" > speaker-node/play.order <<'PY'
import collections, re, sys
exe, traces = sys.argv[1], sys.argv[2:]
per = []
for path in traces:  # callgrind names each object and function once, then by number
    obs, fns, ran, ob = {}, {}, [], None
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, idx, name = m.groups()
        table = obs if kind.endswith("ob") else fns
        if name:
            table[idx] = name
        if kind == "ob":
            ob = obs.get(idx)
        elif kind == "fn" and ob == exe and fns.get(idx) not in ran:
            ran.append(fns[idx])
    per.append(ran)
everywhere = collections.Counter(n for ran in per for n in set(ran))
order = [n for n in per[0] if everywhere[n] == len(per)]
for ran in per:
    order += [n for n in ran if n not in order]
print("\n".join(order))
PY
  echo "speaker-node/play.order: $(wc -l < speaker-node/play.order) functions; rebuild the release binary to use it"
}

case "${1:-all}" in
  decode) build; bench_decode ;;
  playback) build; bench_playback ;;
  cms) exec benches/cms.sh ;;
  fleet) exec benches/fleet.sh ;;
  play-order) build; bench_play_order ;;
  sync)
    for run in "clean link, settled 180 s:LOA_SYNC_CLEAN=1 LOA_SYNC_SETTLE_S=180" \
               "impaired links, settled 180 s:LOA_SYNC_SETTLE_S=180" \
               "impaired links, settled 660 s (steady state):LOA_SYNC_SETTLE_S=660"; do
      echo "== sync: ${run%%:*}"
      env ${run#*:} cargo test -q -p loa-tests --test sync -- --nocapture 2>&1 | grep -E "^(node|        matching|sync:)"
    done ;;
  reach) exec cargo test -q -p loa-tests --test emergency -- --ignored --nocapture ;;
  swarm) build; exec python3 benches/swarm.py "${@:2}" ;;
  content) exec benches/content.sh "${@:2}" ;;
  chaos) LOA_CHAOS_S="${2:-1200}" exec cargo test -q -p loa-tests --test chaos -- --nocapture ;;
  all) build; bench_decode; bench_playback; benches/cms.sh; benches/fleet.sh ;;
  *) echo "usage: benches/run.sh [decode|playback|cms|fleet|sync|reach|swarm|content|chaos|play-order|all]" >&2; exit 2 ;;
esac
