#!/usr/bin/env bash
# Operations at scale (BENCHMARKS.md): 1,000 nodes over 50 villages, each with a year of
# health history at every level it keeps (heartbeats a day, 5-minute buckets a month,
# hours a year) and a quarter of play logs (4 plays a node a day). wrk, paced, on the
# fleet page, its refresh, a node's 30-day charts, the quarter's report and /metrics;
# nginx serving the very same bodies as files beside it. Also the history's size on disk.
#   benches/fleet.sh [seconds]
# The fixture is written straight into the database the controller created (schema and
# all): a year of heartbeats through the link would take a year.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p controller
bin=$PWD/target/release/controller
work=$(mktemp -d)
pid=""
nginx_pid=""
cleanup() { for p in $pid $nginx_pid; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT

"$bin" user add --data "$work/data" --username bench --password bench-password --role admin >/dev/null
python3 - "$work/data/loa.db" <<'PY'
import json, random, sqlite3, sys, time
random.seed(7)
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL")
now_ms = int(time.time() * 1000)
now = now_ms // 1000
cid = db.execute("SELECT id FROM communes LIMIT 1").fetchone()[0]
sha = "ab" * 32
db.execute("INSERT INTO blobs VALUES (?,?,?,?,?,?,?,?,?)", (sha, 1_000_000, "mp3", "mp3", 44100, 2, 60_000, -18.0, now_ms))
db.execute("""INSERT INTO content (commune_id, kind, title, category, description, sha256, duration_ms, gain_db, status,
              created_at, updated_at, approved_at) VALUES (?, 'audio', 'Bản tin sáng', 'news', '', ?, 60000, 2.0, 'approved', ?, ?, ?)""",
           (cid, sha, now_ms, now_ms, now_ms))
item = db.execute("SELECT last_insert_rowid()").fetchone()[0]
villages = []
for i in range(50):
    db.execute("INSERT INTO villages (commune_id, name, kind, created_at) VALUES (?,?,?,?)", (cid, f"Thôn {i + 1}", "thon", now_ms))
    villages.append(db.execute("SELECT last_insert_rowid()").fetchone()[0])
db.execute("""INSERT INTO schedules (commune_id, title, priority, volume, rule, program, created_at, updated_at)
              VALUES (?, 'Bản tin', 'normal', 100, ?, ?, ?, ?)""",
           (cid, json.dumps({"daily": ["06:00", "11:00", "17:00", "19:00"]}),
            json.dumps({"content_ids": [item], "gap_ms": 0, "repeat": 1, "pause_ms": 0, "chime_id": None}), now_ms, now_ms))
sid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
for v in villages:
    db.execute("INSERT INTO schedule_targets VALUES (?, 'village', ?)", (sid, v))
db.execute("INSERT INTO schedule_content VALUES (?, ?)", (sid, item))
health = {"agent": "speaker-node 0.1.0", "uptime_s": 86400, "ip": ["10.0.0.2"], "clock_offset_ms": 3.2,
          "round_trip_ms": 62.0, "cache_used_bytes": 1_000_000, "cache_quota_bytes": 2_000_000_000,
          "disk_free_bytes": 5_000_000_000, "missing_blobs": [], "playing": None, "volume": 80, "output": "pulse",
          "output_ok": True, "underruns": 0, "live_concealed": 0, "live_late": 0, "load": 0.2,
          "temperature_c": 48.0, "last_error": None, "applied_version": None, "pending_logs": 0}
nodes = []
for i in range(1000):
    seen = now_ms - (3_600_000 if i % 20 == 0 else 5_000)  # one in twenty offline
    db.execute("""INSERT INTO nodes (commune_id, village_id, name, lat, lon, notes, created_at, last_seen, health)
                  VALUES (?,?,?,?,?,?,?,?,?)""",
               (cid, villages[i % 50], f"Cụm loa {i + 1}", 20.9 + (i % 40) * 0.002, 107.0 + (i // 40) * 0.002, "",
                now_ms, seen, json.dumps(health)))
    nodes.append(db.execute("SELECT last_insert_rowid()").fetchone()[0])
def levels(node):
    for res, keep in ((10, 86_400), (300, 30 * 86_400), (3600, 365 * 86_400)):
        start = now - keep
        start -= start % res
        n = res // 10
        for t in range(start, now, res):
            yield (node, res, t, n, 62.0 * n, n, 3.2 * n, n, 0)
rows = 0
for node in nodes:
    batch = list(levels(node))
    rows += len(batch)
    db.executemany("INSERT INTO health_points VALUES (?,?,?,?,?,?,?,?,?)", batch)
logs = []
for node in nodes:
    db.execute("INSERT OR IGNORE INTO node_sent VALUES (?,?,0)", (node, sid))
    db.execute("INSERT OR IGNORE INTO node_sent VALUES (?,?,?)", (node, sid, item))
    for d in range(90):
        for h in (6, 11, 17, 19):
            at = (now - d * 86_400 - (now % 86_400) + h * 3600) * 1000
            if at > now_ms:
                continue
            outcome = "completed" if random.random() > 0.02 else "failed"
            logs.append((f"{node}-{d}-{h}", node, item, sid, at, at, at + 60_000, outcome, None, at, None))
db.executemany("INSERT INTO playlogs VALUES (?,?,?,?,?,?,?,?,?,?,?)", logs)
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(f"fixture: {len(nodes)} nodes, {rows:,} health buckets, {len(logs):,} play logs")
PY
size_of() {
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
try:
    n = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (sys.argv[2],)).fetchone()[0]
    print(f"{n / 1e6:.0f} MB")
except sqlite3.Error:
    print("(dbstat unavailable)")
PY
}
echo "== database $(du -h "$work/data/loa.db" | cut -f1); health history $(size_of "$work/data/loa.db" health_points); play logs $(size_of "$work/data/loa.db" playlogs)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOA_LOG=warn "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" --alert-interval-s 3600 >/dev/null &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -X POST "$url/api/v1/auth/login" -d '{"username":"bench","password":"bench-password"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
first=$(curl -sf -H "Authorization: Bearer $token" "$url/api/v1/nodes" | python3 -c 'import sys,json; print(min(n["id"] for n in json.load(sys.stdin)))')
paths=(/ui/fleet /ui/fleet/now "/ui/nodes/$first?range=30d" /api/v1/reports/summary /metrics)

# Two connections, each waiting 50 ms after every answer: a dashboard's worth of people.
cat > "$work/pace.lua" <<LUA
local token = "$token"
local path = ""
function init(args) path = args[1] end
function request() return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token }) end
function delay() return 50 end
function done(summary, latency, requests)
  io.write(string.format("req/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA
mkdir -p "$work/www" "$work/nginx"
i=0
for p in "${paths[@]}"; do
  curl -sf -H "Authorization: Bearer $token" "$url$p" > "$work/www/body-$i"
  i=$((i + 1))
done
chmod a+x "$work"; chmod -R a+rX "$work/www"
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; root $work/www; default_type text/html; }
}
NGINX
/usr/sbin/nginx -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nginx_port/body-0" >/dev/null && break; sleep 0.1; done

i=0
for p in "${paths[@]}"; do
  size=$(stat -c %s "$work/www/body-$i")
  echo "== $p ($((size / 1024)) KiB, ${SECS}s each)"
  printf '  %-10s ' controller; wrk -t1 -c2 -d"${SECS}s" -s "$work/pace.lua" "$url" -- "$p" | tail -1
  printf '  %-10s ' nginx; wrk -t1 -c2 -d"${SECS}s" -s "$work/pace.lua" "http://127.0.0.1:$nginx_port" -- "/body-$i" | tail -1
  i=$((i + 1))
done
echo "== controller peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
