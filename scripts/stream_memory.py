#!/usr/bin/env python3
"""Resident memory of `dia-server` while N streamed requests run at once (standard library only).

Starts the server, sends N identical WAV requests on N connections (each read to the end), and
prints the server's resident memory every --every seconds for --seconds, then stops it. With
the 44.1 kHz codec's shapes (`scripts/random_dac.py`) this shows what each concurrent stream
costs:

    scripts/stream_memory.py --server target/release/dia-server --streams 16 -- \\
        --model-dir assets/fixtures/dia-tiny --dac-path /tmp/dac-44khz-random.safetensors
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse

from load_test import rss_kib, start_server

BODY = {"model": "tts-1", "input": "[S1] A client. [S2] Another. " * 6, "response_format": "wav", "seed": 1}


def read_one(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=900)
    conn.request("POST", "/v1/audio/speech", json.dumps(BODY), {"Content-Type": "application/json"})
    conn.getresponse().read()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=70)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()
    proc, url = start_server(args.server, args.server_args)
    parts = urllib.parse.urlsplit(url)
    for _ in range(args.streams):
        threading.Thread(target=read_one, args=(parts.hostname, parts.port), daemon=True).start()
    start, series = time.monotonic(), []
    while time.monotonic() - start < args.seconds:
        series.append([round(time.monotonic() - start), round(rss_kib(proc.pid) / 1024)])
        time.sleep(args.every)
    proc.kill()
    proc.wait()
    print(json.dumps({"streams": args.streams, "rss_mib_by_second": series, "peak_mib": max(m for _, m in series)}))


if __name__ == "__main__":
    main()
