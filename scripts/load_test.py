#!/usr/bin/env python3
"""Load test of dia-server over loopback (Python standard library only).

Starts `dia-server` (or uses a running one with --url), then for --seconds keeps --clients
clients (more than the server's --max-batch) each sending speech requests back to back: greedy
ones whose bytes must equal a reference response taken first, and seeded sampled ones whose bytes
must equal their first response of that seed; every fourth request streams server-sent events,
and with --drop-every N every Nth request's client hangs up (a client that vanishes): after the
first byte, or with --drop-at random at a point drawn per request (before the response's head,
after it, or after some bytes of the body, SSE included). Once the clients stop, nothing may be
left running, held or queued (`/metrics`). Counts statuses (a 429 is the server saying it is
full; any 5xx, lost connection, truncated or differing body is a failure), samples the server's
resident memory every second, and prints a JSON summary; exit code 1 on any failure.

    cargo build --release -p dia-server
    scripts/load_test.py --server target/release/dia-server --clients 12 --seconds 120 \
        -- --model-dir assets/fixtures/dia-tiny --dac-path assets/fixtures/dac-tiny/weights.safetensors \
           --max-batch 8 --max-queue 2
"""

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

TEXTS = [
    "[S1] Hello world. [S2] How are you today? (laughs)",
    "[S1] The server keeps every request on one batch. [S2] Does it?",
    "[S2] Short one.",
]


def post(url, body, timeout=600, drop=None):
    """POSTs JSON to /v1/audio/speech; returns (status, bytes, seconds, seconds to first byte).
    With `drop` = n, hangs up after n bytes of a 200's body (returning its bytes as None), or
    with n < 0 before the response's head, after -n milliseconds (status None). A body shorter
    than n is read whole."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    start = time.monotonic()
    conn.request("POST", "/v1/audio/speech", json.dumps(body), {"Content-Type": "application/json"})
    if drop is not None and drop < 0:
        time.sleep(-drop / 1000)
        conn.close()
        return None, None, time.monotonic() - start, None
    response = conn.getresponse()
    want = drop if drop is not None and response.status == 200 else 1
    first = response.read(max(want, 1)) if want > 0 else b""
    ttfb = time.monotonic() - start
    if drop is not None and response.status == 200 and len(first) == want:
        conn.close()
        return response.status, None, time.monotonic() - start, ttfb
    data = first + response.read()  # raises IncompleteRead on a truncated chunked body
    conn.close()
    return response.status, data, time.monotonic() - start, ttfb


def drop_point(i, how):
    """Where request i's client hangs up: after the first byte, or a point drawn for i (before
    the head, just after it, or within the first 64 KiB of the body)."""
    if how == "first-byte":
        return 1
    rng = random.Random(i)
    return rng.choice([-rng.randint(0, 300), 0, 1, rng.randint(2, 65536)])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_server(binary, server_args):
    """Starts `dia-server` on a free port and waits until it is ready: (process, url)."""
    proc = subprocess.Popen([binary, "--port", "0", *server_args], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip().removeprefix("dia-server listening on ")
    wait_ready(url)
    return proc, url


def wait_ready(url):
    """Polls /health until it says ok."""
    parts = urllib.parse.urlsplit(url)
    while True:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)


def request(i, max_tokens):
    """Request i of a client: greedy or seeded, in rotating texts and formats."""
    body = {
        "model": "tts-1",
        "input": TEXTS[i % len(TEXTS)],
        "response_format": ["wav", "pcm", "flac", "mp3", "opus"][i % 5],
        "max_tokens": max_tokens,
    }
    if i % 4 == 3:
        body["stream_format"] = "sse"
    if i % 2 == 0:
        body["temperature"] = 0
        body["seed"] = 0
    else:
        body["seed"] = i % 7
    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="dia-server binary to start")
    parser.add_argument("--url", help="a running server instead")
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--drop-every", type=int, default=0, help="hang up on every Nth request (0: never)")
    parser.add_argument("--drop-at", choices=["first-byte", "random"], default="first-byte")
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()

    proc = None
    if args.url:
        url, pid = args.url, None
        wait_ready(url)
    else:
        proc, url = start_server(args.server, args.server_args)
        pid = proc.pid
    parts = urllib.parse.urlsplit(url)

    lock = threading.Lock()
    reference = {}  # request key -> bytes of its first response
    stats = {"ok": 0, "dropped": 0, "dropped_before_head": 0, "busy_429": 0, "failures": [], "latency": [], "ttfb": [], "bytes": 0}
    memory = []
    stop = time.monotonic() + args.seconds

    def client(c):
        i = c
        while time.monotonic() < stop:
            body = request(i, args.max_tokens)
            key = json.dumps(body, sort_keys=True)
            drop = None
            if args.drop_every > 0 and i % args.drop_every == args.drop_every - 1:
                drop = drop_point(i, args.drop_at)
            try:
                status, data, seconds, ttfb = post(url, body, drop=drop)
            except Exception as e:  # lost connection or truncated body
                with lock:
                    stats["failures"].append(f"{key}: {type(e).__name__}: {e}")
                continue
            with lock:
                if status is None:
                    stats["dropped_before_head"] += 1
                    i += args.clients
                    continue
                if status == 429:
                    stats["busy_429"] += 1
                    time.sleep(0.2)
                    continue
                if status != 200:
                    stats["failures"].append(f"{key}: status {status}: {data[:200]!r}")
                    continue
                if data is None:
                    stats["dropped"] += 1
                    i += args.clients
                    continue
                want = reference.setdefault(key, data)
                if data != want:
                    stats["failures"].append(f"{key}: {len(data)} bytes differ from the first response's {len(want)}")
                stats["ok"] += 1
                stats["bytes"] += len(data)
                stats["latency"].append(seconds)
                stats["ttfb"].append(ttfb)
            i += args.clients

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if pid:
            memory.append(rss_kib(pid))
        time.sleep(1)
    for t in threads:
        t.join()

    # Every request the clients left ends within a few steps: nothing running, held or queued.
    gauges = ("dia_running_requests", "dia_held_requests", "dia_queue_depth")
    for _ in range(100):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        left = {
            line.split()[0]: float(line.split()[1])
            for line in metrics.splitlines()
            if line.split(" ")[0] in gauges
        }
        if not any(left.values()):
            break
        time.sleep(0.1)
    else:
        stats["failures"].append(f"left behind after the clients stopped: {left}")
    if proc:
        proc.terminate()
        code = proc.wait(timeout=120)
        if code != 0:
            stats["failures"].append(f"server exited with {code} on SIGTERM")

    def pct(values, p):
        return round(statistics.quantiles(values, n=100)[p - 1], 3) if len(values) > 1 else None

    batch = {}
    for line in metrics.splitlines():
        if line.startswith("dia_batch_size_bucket"):
            le = line.split('le="')[1].split('"')[0]
            batch[le] = float(line.split()[-1])
    steps = [int(batch[k]) for k in batch if k != "+Inf"]
    jobs = {
        line.split('outcome="')[1].split('"')[0]: int(float(line.split()[-1]))
        for line in metrics.splitlines()
        if line.startswith("dia_jobs_total{")
    }
    per_size = [b - a for a, b in zip([0] + steps, steps)]
    warm = memory[len(memory) // 4:] if memory else []
    summary = {
        "clients": args.clients,
        "seconds": args.seconds,
        "responses_ok": stats["ok"],
        "responses_dropped": stats["dropped"],
        "requests_dropped_before_head": stats["dropped_before_head"],
        "responses_429": stats["busy_429"],
        "jobs_by_outcome": jobs,
        "failures": len(stats["failures"]),
        "failure_examples": stats["failures"][:5],
        "audio_bytes": stats["bytes"],
        "latency_s": {"p50": pct(stats["latency"], 50), "p95": pct(stats["latency"], 95)},
        "first_byte_s": {"p50": pct(stats["ttfb"], 50), "p95": pct(stats["ttfb"], 95)},
        "steps_by_batch_size": per_size,
        "rss_mib": {
            "first_after_warm_up": round(warm[0] / 1024, 1) if warm else None,
            "last": round(warm[-1] / 1024, 1) if warm else None,
            "max": round(max(warm) / 1024, 1) if warm else None,
            # One sample every 10 s from the start, to see whether growth stops.
            "every_10_s": [round(m / 1024, 1) for m in memory[::10]],
        },
    }
    print(json.dumps(summary, indent=2))
    return 1 if stats["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
