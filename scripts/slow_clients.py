#!/usr/bin/env python3
"""Clients that stop reading, beside one that reads (Python standard library only).

Starts `dia-server`, takes a reference response to REQUEST alone, then opens --stalled
connections that each send REQUEST and never read a byte. Once the server holds every request
in its batch (`dia_held_requests`: their sockets are full and audio waits for them; one whose
audio ended first is done), sends REQUEST once more on a normal connection. Reports how long the normal request took (alone and beside the held
ones) and whether its bytes equal the reference, when the server held and when it cut the
stalled ones (`dia_jobs_total{outcome="slow_client"}`), the server's resident memory, and
whether every slot was free afterwards; exit code 1 if a check fails. Use the real codec's
shapes (`scripts/random_dac.py`), so each request's audio is what a real one weighs:

    scripts/slow_clients.py --server target/release/dia-server --stalled 50 -- \\
        --model-dir assets/fixtures/dia-tiny --dac-path /tmp/dac-44khz-random.safetensors \\
        --max-batch 51 --max-queue 0 --client-lag 60 --request-timeout 3600
"""

import argparse
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse

from load_test import rss_kib, start_server

LINE = "[S1] A client that stops reading. [S2] Another that reads. "
REQUEST = {"model": "tts-1", "input": LINE, "response_format": "wav", "seed": 1, "temperature": 0}


def rss_mib(pid):
    return rss_kib(pid) / 1024


def speak(host, port):
    """REQUEST on a normal connection: (status or "cut", bytes, seconds)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=900)
    conn.request("POST", "/v1/audio/speech", json.dumps(REQUEST), {"Content-Type": "application/json"})
    response = conn.getresponse()
    status = response.status
    try:
        data = response.read()
    except http.client.IncompleteRead as cut:
        # The server ended the stream early (a timeout, a cut): not the audio asked for.
        data, status = cut.partial, "cut"
    conn.close()
    return status, data, time.monotonic() - start


def metric(host, port, name):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/metrics")
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def wait_for(host, port, name, count, start, limit=3600):
    """Seconds from `start` until metric `name` reaches `count` (None past `limit`)."""
    while time.monotonic() - start < limit:
        if metric(host, port, name) >= count:
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def wait_for_held(host, port, start, limit=3600):
    """Seconds from `start` until every request in the batch is held (None past `limit`)."""
    while time.monotonic() - start < limit:
        held = metric(host, port, "dia_held_requests")
        if held > 0 and held == metric(host, port, "dia_running_requests"):
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def stall(host, port):
    """Sends REQUEST and never reads: the socket is returned open."""
    body = json.dumps(REQUEST).encode()
    sock = socket.create_connection((host, port))
    head = (
        f"POST /v1/audio/speech HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument(
        "--repeat",
        type=int,
        default=6,
        help="times the two-line script is repeated: each stalled request must speak more than "
        "what the socket buffers hold (about 8 s of 44.1 kHz WAV) plus the 2 s the server "
        "lets wait before it holds a request",
    )
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()
    REQUEST["input"] = LINE * args.repeat

    proc, url = start_server(args.server, args.server_args)
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port

    peak = [rss_mib(proc.pid)]
    idle_rss = peak[0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak.append(rss_mib(proc.pid))
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    steps = metric(host, port, "dia_steps_total")
    status, reference, alone = speak(host, port)
    alone_steps = metric(host, port, "dia_steps_total") - steps
    checks = {"reference_ok": status == 200}

    start = time.monotonic()
    stalled = [stall(host, port) for _ in range(args.stalled)]
    held_after = wait_for_held(host, port, start)
    checks["stalled_held"] = held_after is not None
    held = metric(host, port, "dia_held_requests")
    # A stalled request whose audio ended before its backlog reached the hold mark is done; one
    # held early may be cut (`--client-lag`) before the last is held.
    finished = metric(host, port, 'dia_jobs_total{outcome="done"}') - 1
    cut_early = metric(host, port, 'dia_jobs_total{outcome="slow_client"}')
    checks["every_stalled_held_done_or_cut"] = held + finished + cut_early == args.stalled
    held_rss = rss_mib(proc.pid)
    steps = metric(host, port, "dia_steps_total")
    status, beside, with_stalled = speak(host, port)
    checks["beside_ok"] = status == 200
    checks["beside_equals_alone"] = beside == reference
    # The held ones stayed held and only the normal request decoded: as many steps as alone.
    beside_steps = metric(host, port, "dia_steps_total") - steps
    checks["held_ones_decoded_nothing"] = (
        metric(host, port, "dia_held_requests") == held and beside_steps == alone_steps
    )
    cut_after = wait_for(host, port, 'dia_jobs_total{outcome="slow_client"}', held + cut_early, start)
    checks["held_ones_cut"] = cut_after is not None
    status, after, _ = speak(host, port)
    checks["served_after"] = status == 200 and after == reference
    checks["nothing_left"] = all(
        metric(host, port, name) == 0 for name in ("dia_running_requests", "dia_held_requests")
    )
    done.set()
    for sock in stalled:
        sock.close()
    proc.terminate()
    proc.wait(timeout=120)
    summary = {
        "stalled_clients": args.stalled,
        "stalled_held": held,
        "stalled_done_before_held": finished,
        "stalled_cut_before_all_held": cut_early,
        "script_repeats": args.repeat,
        "server_args": args.server_args,
        "response_bytes": len(reference),
        "normal_request_s": {"alone": round(alone, 2), "beside_held": round(with_stalled, 2)},
        "decoder_steps": {"alone": alone_steps, "beside_held": beside_steps},
        "stalled_all_held_after_s": round(held_after, 1) if held_after else None,
        "stalled_all_cut_after_s": round(cut_after, 1) if cut_after else None,
        "rss_mib": {"idle": round(idle_rss, 1), "all_held": round(held_rss, 1), "peak": round(max(peak), 1)},
        "checks": checks,
    }
    print(json.dumps(summary, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
