#!/usr/bin/env python3
"""One controller, a fleet of `speaker-node swarm` nodes (BENCHMARKS.md, "Fleet scale").

For each fleet size: a fresh controller (release build) with an approved item, then a
swarm of N nodes created and enrolled through the API. Measured from outside:
  - enrolment time, and the time from the swarm's first link to all N linked;
  - the controller's RSS, and its CPU (% of one core) over a steady window of
    heartbeats and clock exchanges;
  - a schedule change: API call -> every node applied the new desired state;
  - an emergency: API call -> every node confirmed playing (the play starts 300 ms after
    the call by design, EMERGENCY_LEAD_MS, so nodes in step start together).

With --mqtt the controller serves the nodes through a Mosquitto (Debian's, on a loopback
port, started for each size) and the swarm links through it; the broker's RSS and CPU are
measured beside the controller's.

  benches/swarm.py [N ...] [--window S] [--sync-every-ms MS] [--mqtt]
"""

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CTL = os.path.join(ROOT, "target/release/controller")
NODE = os.path.join(ROOT, "target/release/speaker-node")
PASSWORD = "bench-password-long"
# --default-queues: leave Mosquitto's per-client queue at its default (to show what it drops).
DEFAULT_QUEUES = False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def api(base, method, path, token=None, body=None, raw=None, ctype=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", ctype or "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def upload(base, token, title, wav):
    boundary = "loabench"
    parts = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\nnews\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + wav + f"\r\n--{boundary}--\r\n".encode()
    return api(base, "POST", "/api/v1/content", token, raw=parts,
               ctype=f"multipart/form-data; boundary={boundary}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Swarm:
    def __init__(self, args, env):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, text=True)
        self.lines = queue.Queue()
        self.last = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass

    def until(self, what, timeout, check):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                v = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if v.get("kind") == "status":
                self.last = v
            if check(v):
                return v
        raise SystemExit(f"{what}: not within {timeout} s; last {json.dumps(self.last)[:400]}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def mosquitto(work):
    port = free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        # The controller's client gets a whole fleet's burst at once: Mosquitto's default
        # queue (1,000 QoS 1 messages a client) drops the rest (docs/BROKER.md).
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                + ("" if DEFAULT_QUEUES else "max_queued_messages 200000\nmax_inflight_messages 1000\n"))
    proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"mqtt://127.0.0.1:{port}"


def one(n, window, sync_every_ms, wav, mqtt=False):
    work = tempfile.mkdtemp(prefix="loa-swarm-")
    broker, broker_url = mosquitto(work) if mqtt else (None, None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = os.path.join(work, "data")
    subprocess.run([CTL, "user", "add", "--data", data, "--username", "admin", "--role", "admin",
                    "--password", PASSWORD], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([CTL, "user", "add", "--data", data, "--username", "duyet", "--role", "approver",
                    "--password", PASSWORD], check=True, stdout=subprocess.DEVNULL)
    serve = [CTL, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"]
    if broker_url:
        serve += ["--broker", broker_url]
    ctl = subprocess.Popen(serve,
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "ctl.log"), "w"),
                           env=dict(os.environ, LOA_LOG="warn"))
    try:
        for _ in range(100):
            try:
                api(base, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        token = api(base, "POST", "/api/v1/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
        leader = api(base, "POST", "/api/v1/auth/login", body={"username": "duyet", "password": PASSWORD})["token"]
        api(base, "PATCH", "/api/v1/communes/1", token, {"quiet_start": "00:00", "quiet_end": "00:00"})
        item = upload(base, token, "Bản tin", wav)
        api(base, "POST", f"/api/v1/content/{item['id']}/submit", token, {})
        api(base, "POST", f"/api/v1/content/{item['id']}/approve", leader, {})
        args = [NODE, "swarm", "--server", base, "--count", str(n), "--report-every-s", "1",
                "--connect-rate", "500"]
        if sync_every_ms:
            args += ["--sync-every-ms", str(sync_every_ms)]
        if broker_url:
            args += ["--broker", broker_url]
        t0 = time.time()
        swarm = Swarm(args, dict(os.environ, LOA_SWARM_TOKEN=token))
        enrolled = swarm.until("enrolment", 1800, lambda v: v.get("kind") == "enrolled")
        village = enrolled["village"]
        t_link = time.time()
        swarm.until("all linked", 600, lambda v: v.get("linked", 0) >= n)
        online_s = time.time() - t_link
        # Steady load: heartbeats and clock exchanges only.
        time.sleep(5)
        c0, w0 = cpu_ticks(ctl.pid), time.time()
        b0 = cpu_ticks(broker.pid) if broker else 0
        time.sleep(window)
        tck = os.sysconf("SC_CLK_TCK")
        cpu = (cpu_ticks(ctl.pid) - c0) / tck / (time.time() - w0) * 100
        broker_cpu = (cpu_ticks(broker.pid) - b0) / tck / (time.time() - w0) * 100 if broker else None
        rss = rss_mb(ctl.pid)
        broker_rss = rss_mb(broker.pid) if broker else None
        # A schedule change for the whole village.
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        asked = int(time.time() * 1000)
        api(base, "POST", "/api/v1/schedules", token, {
            "title": "Bản tin tối", "content_ids": [item["id"]],
            "targets": {"villages": [village]}, "priority": "normal", "rule": {"once": later}})
        st = swarm.until("the change applied", 120, lambda v: v.get("applied", {}).get("nodes", 0) >= n
                         and (v["applied"].get("first_ms") or 0) > asked)
        change_ms = st["applied"]["last_ms"] - asked
        change_p50 = st["applied"]["p50_ms"] - asked
        # An emergency for the village.
        asked = int(time.time() * 1000)
        e = api(base, "POST", "/api/v1/emergency", leader,
                {"content_id": item["id"], "targets": {"villages": [village]}})
        st = swarm.until("the emergency confirmed", 120, lambda v: any(
            x.get("nodes", 0) >= n for x in v.get("emergencies", [])))
        em = next(x for x in st["emergencies"] if x["nodes"] >= n)
        # What the controller has recorded of it (the emergency page): polled until all.
        reach = api(base, "GET", f"/api/v1/emergency/{e['id']}", token)
        reached_now = reach["reached"]
        deadline = time.time() + 60
        while reach["reached"] < reach["total"] and time.time() < deadline:
            time.sleep(0.2)
            reach = api(base, "GET", f"/api/v1/emergency/{e['id']}", token)
        recorded_ms = int(time.time() * 1000) - asked
        peak_rss = rss_mb(ctl.pid)
        swarm.stop()
        extra = {}
        if broker:
            extra = {"broker_cpu_pct": round(broker_cpu, 1), "broker_rss_mb": round(broker_rss)}
        return {
            "link": "mqtt" if mqtt else "websocket", **extra,
            "nodes": n, "enrol_s": round(enrolled["ms"] / 1000, 1), "all_online_s": round(online_s, 1),
            "cpu_pct": round(cpu, 1), "rss_mb": round(rss), "rss_peak_mb": round(peak_rss),
            "change_p50_ms": change_p50, "change_all_ms": change_ms,
            "emergency_p50_ms": em["p50_ms"] - asked, "emergency_p99_ms": em["p99_ms"] - asked,
            "emergency_all_ms": em["last_ms"] - asked,
            "reached": f"{reach['reached']}/{reach['total']}",
            "reached_when_all_played": reached_now, "reach_recorded_ms": recorded_ms,
            "total_s": round(time.time() - t0),
        }
    finally:
        ctl.send_signal(signal.SIGTERM)
        try:
            ctl.wait(timeout=20)
        except subprocess.TimeoutExpired:
            ctl.kill()
        if broker:
            broker.kill()
            broker.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    # Each node is a socket in the swarm and one in the controller (the controller's unit
    # sets LimitNOFILE=65536 for the same reason).
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(65536, hard), hard))
    p = argparse.ArgumentParser()
    p.add_argument("sizes", nargs="*", type=int, default=[1000, 5000, 10000])
    p.add_argument("--window", type=int, default=30)
    p.add_argument("--sync-every-ms", type=int, default=None)
    p.add_argument("--mqtt", action="store_true", help="through a Mosquitto on loopback")
    p.add_argument("--default-queues", action="store_true",
                   help="with --mqtt: Mosquitto's default per-client queue")
    a = p.parse_args()
    global DEFAULT_QUEUES
    DEFAULT_QUEUES = a.default_queues
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "item.wav")
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", path,
                        "synth", "30", "sine", "440", "vol", "0.3"], check=True)
        wav = open(path, "rb").read()
    for n in a.sizes:
        r = one(n, a.window, a.sync_every_ms, wav, a.mqtt)
        print(json.dumps(r, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    sys.exit(main())
