#!/usr/bin/env python3
"""Every response format dia-server sends, decoded by a real browser (headless Chromium).

Starts `dia-server`, asks it for one greedy speech in each file format (wav, flac, mp3, opus),
puts them in a page and has Chromium decode each with the Web Audio API (`decodeAudioData` at
44.1 kHz), driven over WebDriver (selenium, Debian's `chromium` and `chromium-driver`). The
WAV's own length is the reference: WAV (streamed, sizes unknown in its header) and FLAC must
decode to exactly its samples, Opus to them within two (48 kHz resampled), MP3 to at least them
and at most LAME's delay and two frames of padding more (a stream has no gapless header).
Prints a JSON summary; exit code 1 if a format fails.

    scripts/browser_formats.py --server $CARGO_TARGET_DIR/debug/dia-server -- \\
        --model-dir assets/fixtures/dia-tiny --dac-path assets/fixtures/dac-tiny/weights.safetensors
"""

import argparse
import base64
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from browser_page import browser
from load_test import start_server

FORMATS = ["wav", "flac", "mp3", "opus"]
PAGE = """<!doctype html><meta charset=utf-8><title>formats</title><pre id=out>pending</pre>
<script>
const files = %s;
(async () => {
  const results = {};
  for (const [name, b64] of Object.entries(files)) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    try {
      const buffer = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(bytes.buffer);
      results[name] = {samples: buffer.length, rate: buffer.sampleRate};
    } catch (e) {
      results[name] = {error: String(e)};
    }
  }
  document.getElementById("out").textContent = JSON.stringify(results);
})();
</script>"""


def speech(url, response_format):
    body = {
        "model": "tts-1",
        "input": "[S1] Hello there. [S2] Fine, thanks.",
        "response_format": response_format,
        "seed": 1,
        "temperature": 0,
        "max_tokens": 200,
    }
    request = urllib.request.Request(
        url + "/v1/audio/speech", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def wav_samples(data):
    """Samples of a 16-bit mono WAV whose header may say its sizes are unknown."""
    at = data.index(b"data") + 8
    return (len(data) - at) // 2


def browser_decode(files, page_dir):
    """{format: {samples, rate} or {error}} as Chromium's Web Audio decodes each file."""
    page = Path(page_dir) / "formats.html"
    encoded = {name: base64.b64encode(data).decode() for name, data in files.items()}
    page.write_text(PAGE % json.dumps(encoded))
    driver = browser()
    try:
        driver.get(page.as_uri())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = driver.find_element("id", "out").text
            if text != "pending":
                return json.loads(text)
            time.sleep(0.1)
        raise TimeoutError("the page did not finish decoding in 60 s")
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("chromium and chromium-driver are not installed", file=sys.stderr)
        return 1
    proc, url = start_server(args.server, args.server_args)
    try:
        files = {name: speech(url, name) for name in FORMATS}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    n = wav_samples(files["wav"])
    want = {
        "wav": (n, n),
        "flac": (n, n),
        "opus": (n - 2, n + 2),
        "mp3": (n, n + 2 * 1152 + 1105),
    }
    with tempfile.TemporaryDirectory() as page_dir:
        decoded = browser_decode(files, page_dir)
    checks = {
        name: decoded[name].get("rate") == 44100 and low <= decoded[name].get("samples", -1) <= high
        for name, (low, high) in want.items()
    }
    print(json.dumps({"wav_samples": n, "expected": want, "chromium": decoded, "checks": checks}, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
