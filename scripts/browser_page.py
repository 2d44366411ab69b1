#!/usr/bin/env python3
"""dia-server's web page in a real browser (headless Chromium over WebDriver, selenium).

Starts `dia-server` on the tiny fixtures with a voices directory and checks, as a person would
use the page: it loads with no console error; Generate plays audio while the response is still
arriving (the first chunk is scheduled on the audio clock, and the clock advances, before the
response ends) and adds a result with a WAV download; Stop cancels a long generation and the
server frees its slot (`/metrics`); a voice uploaded from the page is listed and speaks. Then,
on a server started with `--api-key`, the page shows the 401's message and asks for the key,
refuses a wrong one with the API's message, and works with the right one. Writes a screenshot
with --screenshot. Prints a JSON summary; exit code 1 if a check fails.

    scripts/browser_page.py --server $CARGO_TARGET_DIR/debug/dia-server --screenshot page.png
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from load_test import start_server

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ["--model-dir", str(ROOT / "assets/fixtures/dia-tiny"),
            "--dac-path", str(ROOT / "assets/fixtures/dac-tiny/weights.safetensors")]
LONG = " ".join(f"[S{1 + i % 2}] Line {i} of a long script, spoken in many passes." for i in range(40))


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1000,1400"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def wait(driver, script, seconds=60):
    """Polls the page's `script` (a JS expression) until it is truthy; its value or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.05)
    return None


def metric(url, name):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def set_text(driver, element_id, text):
    element = driver.find_element("id", element_id)
    element.clear()
    element.send_keys(text)


def speak_and_stop(driver, url, checks):
    """Generate (audio before the end, a result), then Stop on a long script (slot freed)."""
    driver.find_element("id", "generate").click()
    checks["result_added"] = bool(wait(driver, "window.dia.results >= 1"))
    checks["audio_received"] = driver.execute_script("return window.dia.received") > 0
    set_text(driver, "text", LONG)
    driver.find_element("id", "generate").click()
    streaming = wait(driver, "window.dia.state === 'streaming' && window.dia.received > 0 && "
                     "window.dia.playedAt !== null")
    # The audio clock runs while the response is still arriving.
    clock = "return [window.dia.state, window.dia.context.currentTime]"
    before = driver.execute_script(clock)
    time.sleep(0.3)
    after = driver.execute_script(clock)
    checks["plays_before_the_response_ends"] = (
        bool(streaming) and before[0] == after[0] == "streaming" and after[1] > before[1]
    )
    checks["running_while_streaming"] = metric(url, "dia_running_requests") >= 1
    driver.find_element("id", "stop").click()
    checks["stopped"] = bool(wait(driver, "window.dia.state === 'stopped'"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and metric(url, "dia_running_requests") > 0:
        time.sleep(0.1)
    checks["stop_frees_the_slot"] = metric(url, "dia_running_requests") == 0 and \
        metric(url, 'dia_jobs_total{outcome="disconnected"}') >= 1


def upload_voice(driver, clip, checks):
    """A voice added from the page's form is listed, selected and speaks."""
    set_text(driver, "voice-name", "guest")
    set_text(driver, "voice-transcript", "[S1] A guest voice.")
    driver.find_element("id", "voice-file").send_keys(str(clip))
    driver.find_element("css selector", "#voice-form button[type=submit]").click()
    checks["voice_added"] = bool(wait(driver, "document.getElementById('voice-status').textContent"
                                      ".includes('added')"))
    checks["voice_selected"] = driver.execute_script("return document.getElementById('voice').value") == "guest"
    set_text(driver, "text", "[S1] In the new voice.")
    results = driver.execute_script("return window.dia.results")
    driver.find_element("id", "generate").click()
    checks["voice_speaks"] = bool(wait(driver, f"window.dia.results > {results}"))


def reuse_seed(driver, url):
    """A result's full 64-bit seed reused gives the same audio (the page keeps it exact)."""
    set_text(driver, "text", "[S1] Same seed, same speech.")
    links = "Array.from(document.querySelectorAll('#history a')).map(a => a.href)"
    results = driver.execute_script("return window.dia.results")
    driver.find_element("id", "generate").click()
    wait(driver, f"window.dia.results > {results}")
    driver.find_element("css selector", "#history li button").click()
    driver.find_element("id", "generate").click()
    wait(driver, f"window.dia.results > {results + 1}")
    first, second = driver.execute_script(f"return {links}")[1::-1][:2]
    fetch = "return fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))"
    return driver.execute_script(fetch, first) == driver.execute_script(fetch, second)


def keys(driver, server, checks):
    """On a server that wants a key: the 401's message, a wrong key refused, the right one."""
    proc, url = start_server(server, FIXTURES + ["--api-key", "right-key"])
    try:
        driver.get(url + "/")
        error = wait(driver, "document.getElementById('error').textContent")
        checks["shows_the_401"] = bool(error) and "API key" in error
        checks["asks_for_the_key"] = driver.find_element("id", "key-section").is_displayed()
        set_text(driver, "key", "wrong-key")
        driver.find_element("css selector", "#key-form button").click()
        wrong = wait(driver, "document.getElementById('error').textContent.includes('incorrect')")
        checks["wrong_key_refused"] = bool(wrong)
        set_text(driver, "key", "right-key")
        driver.find_element("css selector", "#key-form button").click()
        checks["right_key_works"] = bool(wait(driver, "document.getElementById('model').textContent !== ''"))
        set_text(driver, "text", "[S1] With a key.")
        driver.find_element("id", "generate").click()
        checks["speaks_with_the_key"] = bool(wait(driver, "window.dia.results >= 1"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--clip", default=str(ROOT / "tests/data/voice-16000-1.flac"),
                        help="a short clip the tiny model can take as a voice")
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    checks = {}
    with tempfile.TemporaryDirectory() as voices:
        proc, url = start_server(args.server, FIXTURES + ["--voices", voices, "--max-batch", "1"])
        driver = browser()
        try:
            driver.get(url + "/")
            checks["page_loads"] = bool(wait(driver, "document.getElementById('voice').options.length >= 1"))
            checks["title"] = driver.title == "Dia"
            speak_and_stop(driver, url, checks)
            upload_voice(driver, args.clip, checks)
            reused = reuse_seed(driver, url)
            checks["reused_seed_gives_the_same_audio"] = reused
            if args.screenshot:
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(args.screenshot)
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            checks["no_console_errors"] = not errors
            keys(driver, args.server, checks)
        finally:
            driver.quit()
            proc.terminate()
            proc.wait(timeout=60)
    print(json.dumps({"checks": checks, "console_errors": [e["message"] for e in errors]}, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
