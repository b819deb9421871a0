#!/usr/bin/env bash
# CMS API latency under a steady 500 requests/s (BENCHMARKS.md): 10,000 content items and
# 1,000 schedules over 50 villages; wrk on the content list and on 7-day village previews.
#   benches/cms.sh [seconds]
# Peer: nginx serving the very same response bodies as static files, paced the same way:
# the floor a JSON API on this machine can reach. Needs wrk and nginx (installed if missing). The fixture is written straight into the database the
# controller created (schema and all), since 10,000 uploads through the decoder would take
# the benchmark's whole budget and measure the decoder instead.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
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
[ -n "${KEEP:-}" ] && trap - EXIT

"$bin" user add --data "$work/data" --username bench --password bench-password --role admin >/dev/null
python3 - "$work/data/loa.db" <<'PY'
import json, random, sqlite3, sys, time
random.seed(7)
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
cid = db.execute("SELECT id FROM communes LIMIT 1").fetchone()[0]
uid = db.execute("SELECT id FROM users LIMIT 1").fetchone()[0]
sha = "ab" * 32
db.execute("INSERT INTO blobs VALUES (?,?,?,?,?,?,?,?,?)", (sha, 1_000_000, "mp3", "mp3", 44100, 2, 60_000, -18.0, now))
villages = []
for i in range(50):
    db.execute("INSERT INTO villages (commune_id, name, kind, created_at) VALUES (?,?,?,?)", (cid, f"Thôn {i + 1}", "thon", now))
    villages.append(db.execute("SELECT last_insert_rowid()").fetchone()[0])
cats = ["announcement", "news", "emergency", "music"]
items = []
for i in range(10_000):
    db.execute("""INSERT INTO content (commune_id, kind, title, category, description, sha256, duration_ms, gain_db, status,
                  author_id, approver_id, created_at, updated_at, approved_at)
                  VALUES (?, 'audio', ?, ?, ?, ?, ?, 2.0, 'approved', ?, ?, ?, ?, ?)""",
               (cid, f"Thông báo số {i + 1}", random.choice(cats), "Nội dung thông báo của xã", sha,
                random.randint(30_000, 600_000), uid, uid, now - i * 1000, now, now))
    items.append(db.execute("SELECT last_insert_rowid()").fetchone()[0])
for i in range(1000):
    times = sorted({f"{random.randint(5, 20):02d}:{random.choice([0, 15, 30, 45]):02d}" for _ in range(random.randint(1, 3))})
    kind = random.random()
    rule = {"daily": times} if kind < 0.6 else {"weekly": {"days": random.sample(["mon","tue","wed","thu","fri","sat","sun"], 3), "times": times}}
    ids = random.sample(items, random.randint(1, 3))
    program = {"content_ids": ids, "gap_ms": 2000, "repeat": 1, "pause_ms": 0, "chime_id": None}
    prio = random.choice(["background", "normal", "normal", "priority"])
    db.execute("""INSERT INTO schedules (commune_id, title, priority, volume, rule, program, created_by, created_at, updated_at)
                  VALUES (?,?,?,?,?,?,?,?,?)""", (cid, f"Lịch {i + 1}", prio, 100, json.dumps(rule), json.dumps(program), uid, now, now))
    sid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    for v in random.sample(villages, random.randint(1, 3)):
        db.execute("INSERT INTO schedule_targets VALUES (?, 'village', ?)", (sid, v))
    for c in ids:
        db.execute("INSERT OR IGNORE INTO schedule_content VALUES (?, ?)", (sid, c))
db.commit()
print(f"fixture: {db.execute('SELECT count(*) FROM content').fetchone()[0]} items, "
      f"{db.execute('SELECT count(*) FROM schedules').fetchone()[0]} schedules, {len(villages)} villages")
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOA_LOG=warn "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >/dev/null &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -X POST "$url/api/v1/auth/login" -d '{"username":"bench","password":"bench-password"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')

# 12 connections, each waiting 20 ms after every answer: a steady ~500 requests/s (wrk's
# own rate is "as fast as possible"; its Lua delay() paces it).
cat > "$work/pace.lua" <<LUA
local token = "$token"
local paths = {}
function init(args)
  for i = 1, #args do paths[i] = args[i] end
end
local n = 0
function request()
  n = n + 1
  local path = paths[(n % #paths) + 1]
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end
function delay() return 20 end
function done(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA
first_village=$(curl -sf -H "Authorization: Bearer $token" "$url/api/v1/villages" | python3 -c 'import sys,json; print(min(v["id"] for v in json.load(sys.stdin)))')
previews=""
for v in $(seq "$first_village" $((first_village + 49))); do
  previews+=" /api/v1/schedules/preview?village=$v&from=2026-12-01T00:00:00%2B07:00&to=2026-12-08T00:00:00%2B07:00"
done
# nginx with the same bodies as files: /content.json and /preview-N.json.
mkdir -p "$work/www" "$work/nginx"
curl -sf -H "Authorization: Bearer $token" "$url/api/v1/content" > "$work/www/content.json"
static_previews=""
i=0
for p in $previews; do
  curl -sf -H "Authorization: Bearer $token" "$url$p" > "$work/www/preview-$i.json"
  static_previews+=" /preview-$i.json"; i=$((i + 1))
done
chmod a+x "$work"; chmod -R a+rX "$work/www"  # nginx workers run as an unprivileged user
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; root $work/www; default_type application/json; }
}
NGINX
/usr/sbin/nginx -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nginx_port/content.json" >/dev/null && break; sleep 0.1; done

run() { printf '%-34s ' "$1"; wrk -t2 -c12 -d"${SECS}s" -s "$work/pace.lua" "$2" -- ${@:3} | tail -1; }
echo "== content list: 100 newest of 10,000 items (${SECS}s each, ~500 req/s)"
run "controller GET /api/v1/content" "$url" /api/v1/content
run "nginx, same body as a file" "http://127.0.0.1:$nginx_port" /content.json
echo "== 7-day village preview: 50 villages in turn, 1,000 schedules (${SECS}s each, ~500 req/s)"
run "controller GET /schedules/preview" "$url" $previews
run "nginx, same bodies as files" "http://127.0.0.1:$nginx_port" $static_previews
echo "== controller peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
