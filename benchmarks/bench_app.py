"""Start-up and response time of the web demo, measured from outside like a user.

    python benchmarks/bench_app.py [--checkpoint DIR] [--requests 10]

1. Start-up: from launching `python app.py` to the first served page (HTTP 200).
2. Response: a 30 s recording sent through the API (`gradio_client`, api_name
   /faces), median over several requests, compared as a ratio with calling the
   pipeline directly in-process (the floor the web layer adds to).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from common import median_seconds, speech_clip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, timeout: float = 120) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no page at {url} after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    from voice2face import DEFAULT_CHECKPOINT, Voice2Face
    from voice2face.webui import DEFAULT_CHOICES, demo_request

    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoint", str(checkpoint)]
    start = time.perf_counter()
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_page(f"http://127.0.0.1:{port}/", timeout=120)
        startup = time.perf_counter() - start
        clip = speech_clip(30)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(handle_file(str(clip)), DEFAULT_CHOICES, "", api_name="/faces")  # warm-up
        times = []
        for _ in range(args.requests):
            t = time.perf_counter()
            client.predict(handle_file(str(clip)), DEFAULT_CHOICES, "", api_name="/faces")
            times.append(time.perf_counter() - t)
        api = statistics.median(times)
    finally:
        server.terminate()
        server.wait()
    model = Voice2Face.from_pretrained(checkpoint)
    direct = median_seconds(lambda: demo_request(model, str(clip), DEFAULT_CHOICES), args.requests)
    print(f"checkpoint: {checkpoint}")
    print(f"start-up, `python app.py` to first served page: {startup:.2f} s")
    print(f"30 s clip, 1/2/4/8 s + whole, through the API (median of {args.requests}): {1000 * api:.0f} ms")
    print(f"same request in-process (demo_request: pipeline + spectrogram + strip): {1000 * direct:.0f} ms")
    print(f"ratio API / in-process: {api / direct:.2f}x")


if __name__ == "__main__":
    main()
