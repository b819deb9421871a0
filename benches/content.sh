#!/usr/bin/env bash
# Content serving (BENCHMARKS.md): GET /content/{sha256} of a 5 MB item with a node token,
# beside nginx serving the very same file, wrk in alternating rounds; then 1,000 swarm
# nodes each fetching a new 5 MB item at once while wrk reads the content list, whose
# latency must stay low meanwhile.
#   benches/content.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${2:-3}
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p controller -p speaker-node
bin=$PWD/target/release/controller
node=$PWD/target/release/speaker-node
work=$(mktemp -d)
pid=""
nginx_pid=""
swarm_pid=""
cleanup() { for p in $pid $nginx_pid $swarm_pid; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pw=bench-password-long
"$bin" user add --data "$work/data" --username admin --password "$pw" --role admin >/dev/null
"$bin" user add --data "$work/data" --username duyet --password "$pw" --role approver >/dev/null
port=$(free_port)
url=http://127.0.0.1:$port
LOA_LOG=warn "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >/dev/null 2>"$work/ctl.log" &
pid=$!
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
login() { curl -sf "$url/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$1\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
token=$(login admin)
leader=$(login duyet)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
# A 5.3 MB item (30 s of 44.1 kHz stereo WAV), approved.
approved() {
  sox -n -t wav -r 44100 -c 2 -b 16 "$work/$1.wav" synth 30 sine "$2" vol 0.3
  local id
  id=$(curl -sf "$url/api/v1/content" -H "Authorization: Bearer $token" -F title="$1" -F category=news \
    -F "file=@$work/$1.wav" | field id)
  curl -sf -X POST "$url/api/v1/content/$id/submit" -H "Authorization: Bearer $token" -H 'content-type: application/json' -d '{}' >/dev/null
  curl -sf -X POST "$url/api/v1/content/$id/approve" -H "Authorization: Bearer $leader" -H 'content-type: application/json' -d '{}' >/dev/null
  echo "$id"
}
first=$(approved first 440)
sha=$(curl -sf "$url/api/v1/content/$first" -H "Authorization: Bearer $token" | field sha256)
size=$(curl -sf "$url/content/$sha" -H "Authorization: Bearer $token" | wc -c)
# A node token, as the nodes fetch with.
village=$(curl -sf "$url/api/v1/villages" -H "Authorization: Bearer $token" -H 'content-type: application/json' -d '{"name":"Thôn đo"}' | field id)
code=$(curl -sf "$url/api/v1/nodes" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"name\":\"do-1\",\"village_id\":$village}" | field enrollment_code)
ntoken=$(curl -sf "$url/api/v1/nodes/enroll" -H 'content-type: application/json' -d "{\"code\":\"$code\"}" | field token)

mkdir -p "$work/www" "$work/nginx"
curl -sf "$url/content/$sha" -H "Authorization: Bearer $ntoken" > "$work/www/$sha"
chmod a+x "$work"; chmod -R a+rX "$work/www"
nginx_port=$(free_port)
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; root $work/www; default_type application/octet-stream; }
}
NGINX
/usr/sbin/nginx -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nginx_port/$sha" >/dev/null && break; sleep 0.1; done

echo "== GET /content/{sha256}, $((size / 1000)) kB, wrk -t2 -c16, ${SECS}s x $ROUNDS rounds each, alternating"
for r in $(seq "$ROUNDS"); do
  c=$(wrk -t2 -c16 -d"${SECS}s" -H "Authorization: Bearer $ntoken" "$url/content/$sha" | awk '/Requests\/sec/ {print $2}')
  n=$(wrk -t2 -c16 -d"${SECS}s" "http://127.0.0.1:$nginx_port/$sha" | awk '/Requests\/sec/ {print $2}')
  echo "round $r: controller $c req/s, nginx $n req/s"
  echo "$c $n" >> "$work/rounds"
done
python3 - "$work/rounds" "$size" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
size = int(sys.argv[2])
c = statistics.median(r[0] for r in rows); n = statistics.median(r[1] for r in rows)
ratio = statistics.median(r[0] / r[1] for r in rows)
print(f"median: controller {c:.0f} req/s ({c * size / 1e9:.2f} GB/s), nginx {n:.0f} req/s ({n * size / 1e9:.2f} GB/s), ratio {ratio:.2f}x")
PY

echo "== 1,000 nodes fetch a new $((size / 1000)) kB item at once; the content list meanwhile (wrk -t1 -c4)"
# The swarm stands for a thousand boards elsewhere: its own work (hashing 5.3 GB) runs at the
# lowest CPU priority, so that what is measured is the controller's, on the same two cores.
LOA_SWARM_TOKEN=$token nice -n 19 "$node" swarm --server "$url" --count 1000 --village "$village" --fetch each \
  --sync-every-ms 1000 --report-every-s 1 > "$work/swarm.out" 2>/dev/null &
swarm_pid=$!
for _ in $(seq 600); do
  grep -q '"linked":1000' "$work/swarm.out" 2>/dev/null && break; sleep 0.5
done
echo "before: $(wrk -t1 -c4 -d5s --latency -H "Authorization: Bearer $token" "$url/api/v1/content" | grep -E '^ +(50|99)%' | tr -s ' ' | tr '\n' ' ')"
second=$(approved second 660)
at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
fetched_before=$(tail -1 "$work/swarm.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched"])')
curl -sf "$url/api/v1/schedules" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"title\":\"Tin mới\",\"content_ids\":[$second],\"targets\":{\"villages\":[$village]},\"priority\":\"normal\",\"rule\":{\"once\":\"$at\"}}" >/dev/null
start=$(date +%s.%N)
echo "during: $(wrk -t1 -c4 -d10s --latency -H "Authorization: Bearer $token" "$url/api/v1/content" | grep -E '^ +(50|99)%' | tr -s ' ' | tr '\n' ' ')"
for _ in $(seq 600); do
  got=$(tail -1 "$work/swarm.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched"])')
  [ $((got - fetched_before)) -ge 1000 ] && break; sleep 0.5
done
end=$(date +%s.%N)
echo "all 1,000 fetched (hash-checked) in $(python3 -c "print(f'{$end - $start:.1f}')") s after the change; fetch failures: $(tail -1 "$work/swarm.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch_failures"])')"
echo "controller peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
