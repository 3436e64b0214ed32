"""The web demo measured from outside, as visitors use it.

    python benchmarks/bench_app.py [--parts startup,browser,live,load,hostile,attacks|fairness] [--live-seconds 120]

- startup: `python app.py` to the first served page and to the first faces served (one /faces request over
  plain HTTP), with no compiled networks kept and then with them; a fixed reference conv stack timed in the same run.
  With `--baseline DIR` (another checkout, e.g. `git worktree add ../before HEAD~1`): its app.py and ours started in
  turn, `--starts` times each, cold and warm, medians and ratios; with browser too, one server of each asked the same
  /faces request over plain HTTP in turn.
- browser: in headless Chromium, click "Draw faces" for a 10 s clip until the last face is on the
  page: the first request after start, then the median (p50) of later ones; the API's time for
  the same request (also as a multiple of the reference conv stack) and the in-process pipeline's, as ratios;
  the same request over plain HTTP split into its phases (upload, queue, the server's work, the reply's files),
  so what serving costs is told apart from what gradio_client adds; and the page's own Draw over plain HTTP, to
  its first and last face's messages, as a browser on another device sends it (Chromium here shares the server's
  two cores).
- live: the live view over a long recording. In-process, `LiveFaces` fed 1 s chunks: latency per
  update at the start and the end, and memory growth. In the browser (Chromium's fake microphone
  playing speech for --live-seconds): updates seen, and the server's memory at start and end.
- load: 1, 4, 8 and 16 concurrent API clients: throughput, p50/p95 latency; then the server's
  memory and cache files over 200 requests.
- attacks: issue 19's attacks on a shared link, over HTTP, against a fresh server: the Live tab
  sent a 30-minute FLAC and a tone; 60 new live sessions that never close; two files of 2.5 M
  one-sample frames with a normal request 3 s later; a 10-minute WAV and a 30-minute FLAC of speech
  drawn by the page and the API; odd events (a Live event with no chunk or a 19 MB one, sliders at
  infinity, examples that do not exist); the routes around the queue; 200 requests
  from 16 clients with the cache's size; SIGTERM. For each, the server's peak memory with its
  decoder workers, and whether it answered GET / throughout; at the end, the tracebacks in its log.
  Then issue 36's: malformed calls, 2,000 made-up sessions, a 2.6 GB upload fill, a stranger under a
  visitor's session id, eight live tricklers, four full-size downloads at once, the development routes
  (`--parts fairness`: these alone).
- hostile: the reproductions of issue 13 sent through the API (8-channel opus and aac, a FLAC
  bomb, 2000 lengths, tone, noise, DC); after each, whether the server still serves GET / and how
  much its peak memory rose. Needs ffmpeg and sox.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import soxr
from common import median_seconds, peak_rss_mib, reference_seconds, speech_clip

ROOT = Path(__file__).resolve().parent.parent
CHOICES = ["1 s", "2 s", "4 s", "8 s", "whole clip"]


# --------------------------------------------------------------------------- a server to measure


class Server:
    """`python app.py` in a subprocess with its own file cache folder; memory read from /proc. Its compiled
    face networks are kept in `model_cache` (default: a new, empty folder, so each server starts cold)."""

    def __init__(self, checkpoint: Path | None, model_cache: Path | None = None, options: tuple[str, ...] = (), root: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.cache = Path(tempfile.mkdtemp(prefix="v2f-bench-cache-"))
        self.model_cache = model_cache or self.cache / "models"
        command = [sys.executable, str(root / "app.py"), "--port", str(self.port)]
        if checkpoint:
            command += ["--checkpoint", str(checkpoint)]
        command += list(options)
        env = {**os.environ, "GRADIO_TEMP_DIR": str(self.cache), "VOICE2FACE_CACHE": str(self.model_cache)}
        self.log = Path(tempfile.mkstemp(prefix="v2f-bench-server-", suffix=".log")[1])  # its stderr: tracebacks land here
        start = time.perf_counter()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=log)
        wait_for_page(self.url)
        self.startup_s = time.perf_counter() - start
        self.launched_at = start

    def first_faces_s(self, clip: Path) -> float:
        """Launch to the first faces served: one /faces request for `clip` over plain HTTP (its upload, the work and the
        reply's files) once the page is up."""
        import httpx

        with httpx.Client(timeout=120) as http:
            request_phases(http, self, clip)
        return time.perf_counter() - self.launched_at

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def memory_mib(self, field: str = "VmRSS") -> float:
        """`field` of the server process (VmRSS now, VmHWM its peak), in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def workers_peak_mib(self) -> float:
        """The highest peak memory among the server's child processes (the decoder workers)."""
        peaks = [0.0]
        for child in Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split():
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks)

    def cache_files(self) -> int:
        return sum(1 for p in self.cache.rglob("*") if p.is_file())

    def cache_bytes(self) -> int:
        total = 0
        for path in self.cache.rglob("*"):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:  # swept meanwhile
                pass
        return total

    def total_rss_mib(self) -> float:
        """The server's memory now with its children's (the decoder workers)."""
        total = 0.0
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return float("nan")
        for pid in [str(self.process.pid), *children]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
            except OSError:  # a worker that just ended
                pass
        return total

    def tracebacks(self) -> list[str]:
        """The last line of each traceback in the server's log so far (the error it ended in)."""
        lines = self.log.read_text(errors="replace").splitlines()
        ends = [k for k, line in enumerate(lines) if line.startswith("Traceback")]
        return [next((line for line in lines[k + 1 :] if line and not line.startswith((" ", "Traceback"))), "?") for k in ends]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.cache, ignore_errors=True)
        self.log.unlink(missing_ok=True)


def filled_cache(checkpoint: Path, root: Path) -> Path:
    """A compile cache of its own for the checkout at `root`, filled by starting its app.py once, so later starts are warm."""
    cache = Path(tempfile.mkdtemp(prefix="v2f-bench-models-"))
    Server(checkpoint, cache, root=root).close()
    return cache


def bench_startup_against(caches: dict[Path, Path], checkpoint: Path, clip: Path, starts: int) -> None:
    """Our app.py and the baseline's (`caches`: each checkout's root, ours first, and its filled compile cache) started
    in turn: cold (a new, empty compile cache each start), then warm (each its own cache); launch to the first page and
    to the first served faces, and memory at rest, medians of `starts`, and the baseline's over ours."""
    baseline = list(caches)[1]
    for kind in ("cold", "warm"):
        times: dict[Path, list[tuple[float, float, float]]] = {root: [] for root in caches}
        for _ in range(starts):
            for root, cache in caches.items():
                server = Server(checkpoint, None if kind == "cold" else cache, root=root)
                times[root].append((server.startup_s, server.memory_mib(), server.first_faces_s(clip)))
                server.close()
        (page, memory, faces), (base_page, base_memory, base_faces) = ([statistics.median(t[i] for t in times[root]) for i in (0, 1, 2)]
                                                                       for root in caches)  # fmt: skip
        print(f"start-up {kind}, ours / the baseline's ({baseline}), in turn, median of {starts}: first page {page:.2f} / "
              f"{base_page:.2f} s ({base_page / page:.2f}x), first served faces {faces:.2f} / {base_faces:.2f} s ({base_faces / faces:.2f}x), "
              f"memory at rest {memory:.0f} / {base_memory:.0f} MiB")


def bench_served_against(caches: dict[Path, Path], checkpoint: Path, clip: Path, requests: int) -> None:
    """A server of ours and one of the baseline's (`caches` as `bench_startup_against` takes them), warm, asked the
    same /faces request over plain HTTP in turn (`request_phases`), `requests` times each after one each: the medians
    of each phase, and the baseline's over ours."""
    import httpx

    baseline = list(caches)[1]
    servers = {root: Server(checkpoint, cache, root=root) for root, cache in caches.items()}
    phases: dict[Path, list[dict[str, float]]] = {root: [] for root in servers}
    try:
        with httpx.Client(timeout=120) as http:
            for server in servers.values():
                request_phases(http, server, clip)
            for _ in range(requests):
                for root, server in servers.items():
                    phases[root].append(request_phases(http, server, clip))
    finally:
        for server in servers.values():
            server.close()
    ours, theirs = ({phase: statistics.median(p[phase] for p in phases[root]) for phase in PHASES} for root in servers)
    print(f"/faces over plain HTTP, ours / the baseline's ({baseline}), in turn, p50 of {requests}: "
          + ", ".join(f"{phase} {1000 * ours[phase]:.0f} / {1000 * theirs[phase]:.0f} ms" for phase in PHASES)
          + f" ({theirs['total'] / ours['total']:.2f}x)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, timeout: float = 180) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no page at {url} after {timeout} s")


def api_request(client, clip: Path, choices=CHOICES, extra: str = "") -> float:
    """One /faces request through a `gradio_client.Client` (one per simulated visitor), in seconds."""
    from gradio_client import handle_file

    start = time.perf_counter()
    client.predict(handle_file(str(clip)), choices, extra, api_name="/faces")
    return time.perf_counter() - start


def queue_messages(http, server: Server, fn_index: int, data: list, session: str) -> Iterator[dict]:
    """Join the queue for event `fn_index` with `data`, as a browser's session does, and yield each message the server
    streams back (heartbeats too). A join the queue refuses yields one message: {"msg": "refused", "why": ...}."""
    import json

    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session})  # NaN and Infinity as a browser can send them
    joined = http.post(server.url + "gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
    if joined.status_code != 200:
        yield {"msg": "refused", "why": f"{joined.status_code} {joined.text[:80]}"}
        return
    with http.stream("GET", server.url + "gradio_api/queue/data", params={"session_hash": session}) as answer:
        for line in answer.iter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


#: The phases of one /faces request over plain HTTP, as `request_phases` times them.
PHASES = ("upload", "queued", "computing", "reply files", "total")


def request_phases(http, server: Server, clip: Path, choices=CHOICES) -> dict[str, float]:
    """One /faces request over plain HTTP (httpx, one kept-alive connection), as Gradio's own protocol runs it, in
    seconds a phase: the upload; joining the queue until the server starts the work; the work (decoding, hearing,
    drawing, the images written) until the answer is sent; fetching the reply's files, as a client that shows them
    must. gradio_client adds its own polling and downloads on top (`api_request`)."""
    faces = event_index(http, server, "faces")  # the page's config, read once a visitor: not counted
    start = time.perf_counter()
    data = [uploaded(http, server, clip), choices, ""]
    uploaded_at = time.perf_counter()
    started_at, output = uploaded_at, {}
    for message in queue_messages(http, server, faces, data, os.urandom(6).hex()):
        if message["msg"] == "process_starts":
            started_at = time.perf_counter()
        elif message["msg"] in ("process_completed", "refused"):
            output = message.get("output") or message  # a refusal says why
            break
    answered_at = time.perf_counter()
    if not output.get("data"):
        raise SystemExit(f"/faces over HTTP gave no faces: {output}")
    for file in file_urls(output["data"]):
        http.get(file).raise_for_status()
    done = time.perf_counter()
    return dict(zip(PHASES, (uploaded_at - start, started_at - uploaded_at, answered_at - started_at, done - answered_at,
                             done - start), strict=True))  # fmt: skip


def page_faces_over_http(http, server: Server, clip: Path, draw_page: int) -> tuple[float, float]:
    """The page's own Draw event (`draw_page`: its fn_index) over plain HTTP, as a browser on another device sends
    it once its file is uploaded: seconds from the click's request to the message that brings the first face, and to
    the one that brings the last. Chromium on this machine shares the server's two cores; a visitor's does not."""
    data = [uploaded(http, server, clip), CHOICES, ""]
    start, first, message = time.perf_counter(), None, {}
    for message in queue_messages(http, server, draw_page, data, os.urandom(6).hex()):
        faces = (message.get("output") or {}).get("data") or [""]
        html = faces[0] if isinstance(faces[0], str) else "".join(op[2] for op in faces[0] if isinstance(op[-1], str))
        drawn = html.count('<figure class="v2f-face"><img')  # a face still to come is a "v2f-face v2f-pending"
        if drawn and first is None:
            first = time.perf_counter() - start
        if drawn == len(CHOICES):
            return first, time.perf_counter() - start
        if message["msg"] in ("process_completed", "refused"):
            break
    raise SystemExit(f"the page's Draw over HTTP ended without its {len(CHOICES)} faces: {str(message)[:300]}")


def file_urls(value) -> list[str]:
    """The URLs of every file in a Gradio answer's data (a gallery's images, an image, nested as they come)."""
    if isinstance(value, dict):
        nested = [u for v in value.values() if isinstance(v, (dict, list)) for u in file_urls(v)]
        return ([value["url"]] if value.get("url") else []) + nested
    return [u for v in value for u in file_urls(v)] if isinstance(value, list) else []


def clients(url: str, count: int) -> list:
    from gradio_client import Client

    return [Client(url, verbose=False) for _ in range(count)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


# --------------------------------------------------------------------------- parts


def bench_browser(server: Server, clip: Path, requests: int, checkpoint: Path, reference: float) -> None:
    from playwright.sync_api import sync_playwright

    other = speech_clip(10, voice="en+f3")  # two clips in turn, so each click gives new faces
    times, first_times = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(server.url)
        for k in range(requests + 1):
            if k:
                page.click("#voice button[aria-label='Clear']")
            page.click('#voice button[aria-label="Upload file"]')
            page.set_input_files("#voice input[type=file]", str(clip if k % 2 == 0 else other))
            page.wait_for_selector("#voice button[aria-label='Clear']")
            faces = "[...document.querySelectorAll('#faces .v2f-face img')]"
            # faces on the page now are marked; each step of the new request replaces them with unmarked ones
            page.evaluate(f"{faces}.forEach(i => i.dataset.old = '1'); window.v2fStrip = document.querySelector('#strip img')?.src")
            # clicked from inside the page: Playwright's own click waits 80-130 ms on its checks first
            start = page.evaluate("(() => { const t = performance.now(); document.querySelector('#draw').click(); return t; })()")
            page.wait_for_function(  # the first of the new faces is in place (they arrive one by one, whole clip first)
                f"{faces}.some(i => !i.dataset.old && i.complete)", timeout=60000, polling="raf",
            )
            first_times.append((page.evaluate("performance.now()") - start) / 1000)
            page.wait_for_function(  # all five new faces are in place
                f"(() => {{ const imgs = {faces}; return imgs.length >= 5 && imgs.every(i => !i.dataset.old && i.complete); }})()",
                timeout=60000,
                polling="raf",
            )
            times.append((page.evaluate("performance.now()") - start) / 1000)
            # the strip comes last: wait for it, so this request is over before the next is timed
            page.wait_for_function("(() => { const s = document.querySelector('#strip img'); return s && s.src !== window.v2fStrip; })()",
                                   timeout=60000)  # fmt: skip
        browser.close()
    first, later = times[0], statistics.median(times[1:])
    client = clients(server.url, 1)[0]
    api = statistics.median(api_request(client, clip) for _ in range(requests))
    import httpx

    with httpx.Client(timeout=120) as http:
        phases = [request_phases(http, server, clip) for _ in range(requests)]
        draw_page = event_index(http, server, "draw_page")
        over_http = [page_faces_over_http(http, server, clip if k % 2 == 0 else other, draw_page) for k in range(requests + 1)][1:]
    split = {name: statistics.median(p[name] for p in phases) for name in PHASES}
    http_first, http_last = (statistics.median(times) for times in zip(*over_http, strict=True))
    from voice2face import Voice2Face
    from voice2face.web.page import demo_request

    model = Voice2Face.from_pretrained(checkpoint)
    model.serve_with_openvino()  # as the app does
    direct = median_seconds(lambda: demo_request(model, str(clip), CHOICES), requests)
    print(f"browser, click to first face (the whole clip's), 10 s clip: first request {1000 * first_times[0]:.0f} ms; "
          f"later p50 {1000 * statistics.median(first_times[1:]):.0f} ms")
    print(f"browser, click to last face, 10 s clip, 5 lengths: first request after start {1000 * first:.0f} ms; "
          f"later p50 {1000 * later:.0f} ms (first / later {first / later:.2f}x)")  # fmt: skip
    print(f"the page's Draw over plain HTTP, as a browser on another device sends it, the same two clips in turn: its request "
          f"to the first face's message p50 {1000 * http_first:.0f} ms, to the last face's {1000 * http_last:.0f} ms; Chromium "
          f"here, which draws the page on the server's two cores, {statistics.median(first_times[1:]) / http_first:.2f}x / "
          f"{later / http_last:.2f}x that")  # fmt: skip
    print(f"same request through the API (gradio_client), p50: {1000 * api:.0f} ms ({api / reference:.1f}x the reference conv "
          f"stack); in-process demo_request: {1000 * direct:.0f} ms; browser / in-process {later / direct:.2f}x")  # fmt: skip
    print("same request over plain HTTP, p50 of each phase: " + ", ".join(f"{name} {1000 * split[name]:.0f} ms" for name in PHASES)
          + f" ({split['total'] / reference:.1f}x the reference conv stack); server's work / in-process {split['computing'] / direct:.2f}x, "
          f"gradio_client / plain HTTP {api / split['total']:.2f}x")  # fmt: skip


def fake_microphone_args(clip: str | Path) -> list[str]:
    """Chromium's flags for a microphone that plays `clip`, allowed without asking."""
    mic = Path(tempfile.mkdtemp()) / "mic.wav"  # Chromium wants 16-bit PCM for its fake microphone
    data, rate = soundfile.read(clip, dtype="int16")
    soundfile.write(mic, data, rate, subtype="PCM_16")
    return ["--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}"]  # fmt: skip


def open_live_tab(browser, server: Server):
    """A phone-sized page on the Live tab, once its recorder can record: the streaming recorder loads a WAV
    encoder into a web worker after the page opens, and a Record click before that records nothing."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server.url)
    page.click("button[role='tab']:has-text('Live')")
    page.wait_for_selector("#live-voice button.record-button")
    while not page.workers:
        page.wait_for_timeout(20)
    return page


def save_screenshots(server: Server, folder: Path) -> None:
    """The page after drawing the bundled male example on a desktop and on a phone, and the Live tab
    on a phone 6 s into a recording (for the README)."""
    from playwright.sync_api import sync_playwright

    from voice2face.web.page import example_clips

    folder.mkdir(parents=True, exist_ok=True)
    drawn = "!!document.querySelector('#faces .v2f-faces:not(.v2f-example) img') && !document.querySelector('#faces .v2f-pending')"
    male = next(clip for clip in example_clips() if "male_voice_en-us" in clip)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=fake_microphone_args(male))
        for name, (width, height) in {"desktop": (1366, 900), "phone": (390, 844)}.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(server.url)
            page.click('#voice button[aria-label="Upload file"]')
            page.set_input_files("#voice input[type=file]", male)
            page.wait_for_selector("#voice audio", state="attached")
            page.click("#draw")
            page.wait_for_function(drawn, timeout=60000)
            page.wait_for_selector("#strip-download", state="visible")
            page.screenshot(path=str(folder / f"{name}.png"))  # where the page puts the visitor: the faces
        page = open_live_tab(browser, server)
        page.click("#live-voice button.record-button")
        page.wait_for_function("/, [6-9]\\.\\d s recorded/.test(document.querySelector('#live-caption').innerText)", timeout=60000)
        page.evaluate("document.querySelector('#live-voice').scrollIntoView({block: 'start'})")
        page.screenshot(path=str(folder / "live.png"))
        browser.close()
    print(f"screenshots: {folder}/desktop.png, {folder}/phone.png, {folder}/live.png")


def bench_live_in_process(seconds: float, checkpoint: Path) -> None:
    from voice2face import Voice2Face
    from voice2face.web.live import LiveFaces

    model = Voice2Face.from_pretrained(checkpoint)
    speech, rate = soundfile.read(speech_clip(seconds), dtype="float32")
    live = LiveFaces(model)
    live.add(rate, (speech[:rate] * 32767).astype(np.int16))  # warm-up
    live = LiveFaces(model)
    tracemalloc.start()
    latencies, held = [], []
    for start in range(0, len(speech) - rate + 1, rate):
        t = time.perf_counter()
        live.add(rate, (speech[start : start + rate] * 32767).astype(np.int16))
        latencies.append(time.perf_counter() - t)
        held.append(tracemalloc.get_traced_memory()[0] / 2**20)
    tracemalloc.stop()
    n = max(1, len(latencies) // 10)
    print(f"live, in-process, {len(latencies)} one-second chunks of speech: update latency first {n} p50 "
          f"{1000 * statistics.median(latencies[:n]):.1f} ms, last {n} p50 {1000 * statistics.median(latencies[-n:]):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms")  # fmt: skip
    print(f"live, in-process: Python memory held after 10 s {held[9]:.2f} MiB, at the end {held[-1]:.2f} MiB "
          f"(the recording kept for the final comparison is 16-bit: {32 * len(latencies) / 1024:.2f} MiB)")


def bench_live_browser(server: Server, seconds: float) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=fake_microphone_args(speech_clip(seconds + 10)))
        page = open_live_tab(browser, server)
        page.evaluate("""() => {
            window.v2fUpdates = [];
            const target = document.querySelector('#live-caption');
            new MutationObserver(() => window.v2fUpdates.push([performance.now(), target.innerText.trim()]))
                .observe(target, {subtree: true, childList: true, characterData: true});
        }""")
        rss_start = server.memory_mib()
        page.click("#live-voice button.record-button")
        page.wait_for_function(
            f"window.v2fUpdates.some(u => /, ({int(seconds)}|{int(seconds) + 1})\\.\\d s recorded/.test(u[1]))",
            timeout=(seconds + 60) * 1000,
        )
        rss_end = server.memory_mib()
        # one entry per change of the caption (a DOM update fires several mutation records)
        updates = page.evaluate(
            "window.v2fUpdates.filter((u, k, all) => u[1].startsWith('Face from') && (k === 0 || all[k - 1][1] !== u[1]))"
        )
        faces_drawn = len({u[1].split(" s of speech")[0] for u in updates})
        page.click("#live-voice button.stop-button")
        page.wait_for_selector("#faces .v2f-faces:not(.v2f-example) .v2f-face img", timeout=60000)
        browser.close()
    times = [u[0] / 1000 for u in updates]
    gaps = np.diff(times)
    early, late = gaps[: len(gaps) // 10], gaps[-(len(gaps) // 10) :]
    print(f"live, browser, {seconds:.0f} s recording: {len(updates)} caption updates, {faces_drawn} different faces; gap p50 "
          f"{statistics.median(gaps):.2f} s (first tenth {statistics.median(early):.2f} s, last tenth {statistics.median(late):.2f} s)")
    print(f"live, browser: server memory {rss_start:.0f} MiB at the start, {rss_end:.0f} MiB after {seconds:.0f} s")


def bench_load(server: Server, clip: Path) -> None:
    for count in (1, 4, 8, 16):
        visitors = clients(server.url, count)
        per_client = max(2, 16 // count)
        start = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            latencies = list(pool.map(lambda client: api_request(client, clip), visitors * per_client))
        elapsed = time.perf_counter() - start
        print(f"load, {count:2d} clients: {len(latencies) / elapsed:.2f} requests/s, "
              f"p50 {percentile(latencies, 50):.2f} s, p95 {percentile(latencies, 95):.2f} s; "
              f"server memory {server.memory_mib():.0f} MiB, its peak so far {server.memory_mib('VmHWM'):.0f} MiB")  # fmt: skip
    rss, files = server.memory_mib(), server.cache_files()
    visitors = clients(server.url, 4)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda client: api_request(client, clip), visitors * 50))
    print(f"load, 200 more requests: server memory {rss:.0f} -> {server.memory_mib():.0f} MiB; "
          f"cache files {files} -> {server.cache_files()} (swept every minute, files older than 5 minutes)")


def hostile_files(folder: Path) -> dict[str, Path]:
    if not (shutil.which("ffmpeg") and shutil.which("sox")):
        raise SystemExit("the hostile part needs ffmpeg and sox: apt-get install ffmpeg sox")
    pan = "pan=7.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0|c6=c0|c7=c0"
    commands = {
        "ch8.webm": ["ffmpeg", "-y", "-f", "lavfi", "-i", "sine=f=300:d=2", "-af", pan, "-c:a", "libopus"],
        "ch8.m4a": ["ffmpeg", "-y", "-f", "lavfi", "-i", "sine=f=300:d=2", "-af", pan, "-c:a", "aac"],
        "bomb.flac": ["sox", "-n", "-D", "-r", "192000", "-c", "8", "-b", "16", "{out}", "synth", "300", "sine", "0", "dcshift", "0.3"],
        "bomb655.flac": ["sox", "-n", "-D", "-r", "655000", "-c", "1", "-b", "16", "{out}", "synth", "300", "sine", "0", "dcshift", "0.3"],
        "tone.wav": ["sox", "-n", "-r", "16000", "{out}", "synth", "5", "sine", "440"],
        "noise.wav": ["sox", "-n", "-r", "16000", "{out}", "synth", "5", "whitenoise", "vol", "0.3"],
        "dc.wav": ["sox", "-n", "-r", "16000", "{out}", "synth", "5", "sine", "0", "dcshift", "0.3"],
    }
    paths = {}
    for name, command in commands.items():
        out = folder / name
        command = [str(out) if c == "{out}" else c for c in command] + ([] if "{out}" in command else [str(out)])
        subprocess.run(command, check=True, capture_output=True)
        paths[name] = out
    return paths


def bench_hostile(server: Server, clip: Path) -> None:
    from gradio_client import handle_file

    folder = Path(tempfile.mkdtemp())
    cases = [(name, path, CHOICES, "") for name, path in hostile_files(folder).items()]
    cases.append(("2000 lengths", clip, ["1 s"], " ".join(["1"] * 2000)))
    client = clients(server.url, 1)[0]
    for name, path, choices, extra in cases:
        peak_before = server.memory_mib("VmHWM")
        start = time.perf_counter()
        try:
            client.predict(handle_file(str(path)), choices, extra, api_name="/faces")
            outcome = "faces"
        except Exception as err:  # the API's error, as a visitor sees it
            outcome = str(err).splitlines()[0][:110]
        elapsed = time.perf_counter() - start
        print(f"hostile, {name:13s}: {elapsed:5.2f} s, server peak +{server.memory_mib('VmHWM') - peak_before:4.0f} MiB "
              f"(decoder workers' peak {server.workers_peak_mib():.0f} MiB), "
              f"GET / {'answers' if server.answers() else 'DOES NOT ANSWER'}: {outcome}")  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)


class Watch:
    """While a block runs: the server's memory with its decoder workers (VmRSS summed, sampled every
    0.1 s) and whether it answers GET / (asked every 0.5 s, 5 s allowed)."""

    def __init__(self, server: Server):
        self.server, self.peak_mib, self.unanswered, self.asked = server, 0.0, 0, 0

    def __enter__(self) -> Watch:
        import threading

        self.running = True
        self.threads = [threading.Thread(target=self._sample), threading.Thread(target=self._ask)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        for thread in self.threads:
            thread.join()

    def _sample(self) -> None:
        while self.running:
            self.peak_mib = max(self.peak_mib, self.server.total_rss_mib())
            time.sleep(0.1)

    def _ask(self) -> None:
        while self.running:
            self.asked += 1
            self.unanswered += not self.server.answers()
            time.sleep(0.5)

    def summary(self) -> str:
        answered = "GET / answered throughout" if self.unanswered == 0 else f"GET / UNANSWERED {self.unanswered} of {self.asked} times"
        return f"server+workers peak {self.peak_mib:.0f} MiB; {answered}"


def page_event(http, server: Server, name: str, data: list, session: str, last: bool = False, deadline_s: float = 120) -> list:
    """The page's event `name` called over HTTP as a browser session calls it; its first answer (with
    `last`, its last, sent as it completes). TimeoutError if it has not answered so in `deadline_s`."""
    latest = [None, "no answer"]
    deadline = time.monotonic() + deadline_s
    for message in queue_messages(http, server, event_index(http, server, name), data, session):
        if message["msg"] == "refused":
            return [None, f"refused by the queue: {message['why']}"]
        if time.monotonic() > deadline:  # Gradio sends a heartbeat every 15 s, so the deadline is looked at
            raise TimeoutError(name)
        if message["msg"] in ("process_streaming", "process_generating", "process_completed"):
            output = message.get("output") or {}
            if output.get("data"):
                latest = output["data"]
            elif output.get("error"):
                latest = [None, output["error"]]
            if message["msg"] == "process_completed" or (message["msg"] == "process_streaming" and not last):
                return latest
    return latest


def event_index(http, server: Server, name: str) -> int:
    """Where the page's config lists the event `name`: its fn_index in a call to the queue."""
    return [d.get("api_name") for d in http.get(server.url + "config").json()["dependencies"]].index(name)


def uploaded(http, server: Server, path: Path) -> dict:
    """`path` uploaded to the server, as the page's file input sends it on."""
    with path.open("rb") as file:
        return {"path": http.post(server.url + "gradio_api/upload", files={"files": file}).json()[0], "meta": {"_type": "gradio.FileData"}}


def live_chunk(http, server: Server, path: Path, session: str, token: str = "") -> str:
    """One chunk sent to the Live tab's stream by a session, which never closes it: the caption."""
    return page_event(http, server, "live_update", [uploaded(http, server, path), token], session)[1]


def attack_files(folder: Path) -> dict[str, Path]:
    """Issue 19's reproductions: a 30-minute 48 kHz stereo FLAC of silence (306 KB), a Matroska file of
    2.5 M one-sample frames (20 MB), a 60 KB chunk of speech and a tone."""
    import av

    flac = folder / "30min.flac"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", "1800",
                    "-c:a", "flac", str(flac)], check=True)  # fmt: skip
    tiny = folder / "tiny-frames.mkv"
    with av.open(str(tiny), "w", format="matroska") as out:
        stream = out.add_stream("pcm_s16le", rate=16000)
        stream.layout = "mono"
        for k in range(2_500_000):
            frame = av.AudioFrame.from_ndarray(np.full((1, 1), k % 100, np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, k
            for packet in stream.encode(frame):
                out.mux(packet)
    speech, rate = soundfile.read(speech_clip(10), dtype="float32")
    chunk = folder / "chunk.wav"
    soundfile.write(chunk, speech[int(rate * 0.5) : int(rate * 2.4)], rate, subtype="PCM_16")  # 60 KB at 16 kHz
    tone = folder / "tone.wav"
    soundfile.write(tone, 0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate), rate, subtype="PCM_16")
    speech16k = soxr.resample(speech, rate, 16000)
    long_wav, long_flac = folder / "10min.wav", folder / "30min.flac"  # 19 MB and 33 MB: under the 50 MB upload cap
    soundfile.write(long_wav, np.tile(speech16k, 60), 16000, subtype="PCM_16")
    soundfile.write(long_flac, np.tile(speech16k, 180), 16000, subtype="PCM_16")
    return {"flac": flac, "tiny": tiny, "chunk": chunk, "tone": tone, "10-minute WAV of speech": long_wav, "30-minute FLAC of speech": long_flac}


def bench_attacks(checkpoint: Path, clip: Path) -> None:
    """Issue 19's attacks on a shared link, each against a fresh `python app.py`, over HTTP."""
    import httpx
    from gradio_client import handle_file

    folder = Path(tempfile.mkdtemp())
    files = attack_files(folder)
    http = httpx.Client(timeout=120)
    server = Server(checkpoint, options=("--behind-proxy",))  # the tricklers below come from one address, a visitor from another
    try:
        print(f"attacks: server+workers after start-up {server.total_rss_mib():.0f} MiB (start-up peak {server.memory_mib('VmHWM'):.0f} MiB)")
        with Watch(server) as watch:
            start = time.perf_counter()
            caption = live_chunk(http, server, files["flac"], "flac")
            print(f"attack, Live tab, 30-min FLAC ({files['flac'].stat().st_size // 1024} KB): {time.perf_counter() - start:.2f} s, "
                  f"answer {caption[:70]!r}; {watch.summary()}")  # fmt: skip
        with Watch(server) as watch:
            odd = {
                "a Live event with no chunk": ("live_update", [None, ""]),
                "a Live event with a 19 MB upload": ("live_update", [uploaded(http, server, files["10-minute WAV of speech"]), ""]),
                "the gender slider at infinity": ("retune", [None, "example", float("inf"), 0, 0]),
                "the age slider at 1e308": ("retune_1", [None, "example", 50, 1e308]),
                "the age slider at 'x'": ("retune_1", [None, "example", 50, "x"]),
                "example 99": ("load_example", [99]),
                "example 'x'": ("load_example", ["x"]),
                "the lengths as a string": ("draw_page", [uploaded(http, server, clip), "1 s", ""]),
            }
            for k, (what, (event, data)) in enumerate(odd.items()):
                start = time.perf_counter()
                try:  # to the end of the event: a stream the server leaves open holds one of Gradio's 40 jobs
                    answer = page_event(http, server, event, data, f"odd{k}", last=True, deadline_s=20)
                    ended = f"ended in {time.perf_counter() - start:.2f} s"
                except TimeoutError:
                    answer, ended = "", "STILL OPEN after 20 s"
                print(f"attack, {what}: {ended}: {str(answer)[:90]!r}")
            print(f"attack, odd events: {watch.summary()}")
        with Watch(server) as watch:
            start = time.perf_counter()
            caption = live_chunk(http, server, files["tone"], "tone")
            print(f"attack, Live tab, a 440 Hz tone: {time.perf_counter() - start:.2f} s, answer {caption[:60]!r}")
            before = server.total_rss_mib()
            captions = [live_chunk(http, server, files["chunk"], f"visitor{k}") for k in range(60)]
            full = sum(c.startswith("The live view is full") for c in captions)
            start = time.perf_counter()
            caption = live_chunk(http, server, files["chunk"], "ninth")
            full_s = time.perf_counter() - start
            after = server.total_rss_mib()
            print(f"attack, 60 new live sessions, one 60 KB chunk each, never closed: {60 - full} recorded, {full} told "
                  f"the live view is full; the next visitor told in {full_s:.2f} s; server+workers {before:.0f} -> {after:.0f} MiB "
                  f"({after - before:+.0f}); {watch.summary()}")  # fmt: skip
        with Watch(server) as watch:
            client, normal = clients(server.url, 1)[0], {}

            def slow(_):
                try:
                    clients(server.url, 1)[0].predict(handle_file(str(files["tiny"])), CHOICES, "", api_name="/faces")
                    return "faces"
                except Exception as err:  # the API's error, as a visitor sees it
                    return str(err).splitlines()[0][:80]

            with ThreadPoolExecutor(2) as pool:
                refusals = pool.map(slow, range(2))
                time.sleep(3)
                normal["s"] = api_request(client, clip)
                refusals = list(refusals)
            print(f"attack, two 20 MB files of 2.5 M one-sample frames at once, a normal 10 s clip 3 s later: "
                  f"the clip took {normal['s']:.2f} s; the files: {refusals[0]!r}; {watch.summary()}")  # fmt: skip
        for name in ("10-minute WAV of speech", "30-minute FLAC of speech"):
            with Watch(server) as watch:
                start = time.perf_counter()
                page = page_event(http, server, "draw_page", [uploaded(http, server, files[name]), CHOICES, ""], "long", last=True)
                page_s, start = time.perf_counter() - start, time.perf_counter()
                api = "faces" if api_request(clients(server.url, 1)[0], files[name]) else "?"
                print(f"attack, a {name} ({files[name].stat().st_size >> 20} MB), drawn by the page and by the API: {page_s:.2f} s "
                      f"and {time.perf_counter() - start:.2f} s; page: {str(page[1])[:50]!r}, API: {api}; {watch.summary()}")  # fmt: skip
        with Watch(server) as watch:
            bypass = [http.post(f"{server.url}gradio_api/run/{name}", json={"data": []}).status_code for name in ("faces", "draw_page", "live_update")]
            huge = http.post(f"{server.url}gradio_api/queue/join", content=b"{" + b" " * (60 << 20) + b"}",
                             headers={"content-type": "application/json"}).status_code  # fmt: skip
            video = http.post(f"{server.url}gradio_api/process_recording", files={"video": ("r.mp4", b"\0" * 1000, "video/mp4")}).status_code
            print(f"attack, routes around the queue: /run/faces, /run/draw_page, /run/live_update -> {bypass}; a 60 MB "
                  f"queue/join -> {huge}; Gradio's ffmpeg route /process_recording -> {video}; {watch.summary()}")  # fmt: skip
        with Watch(server) as watch:
            visitors, biggest = clients(server.url, 16), [0]

            def measure_cache():
                while not done:
                    biggest[0] = max(biggest[0], server.cache_bytes())
                    time.sleep(0.2)

            import threading

            done = False
            meter = threading.Thread(target=measure_cache)
            meter.start()
            with ThreadPoolExecutor(16) as pool:
                latencies = list(pool.map(lambda client: api_request(client, clip), visitors * 13))[:200]
            done = True
            meter.join()
            from voice2face.web.limits import CACHE_MAX_BYTES

            print(f"attack, 208 requests from 16 clients: p50 {percentile(latencies, 50):.2f} s; cache at most "
                  f"{biggest[0] / 2**20:.0f} MiB (cap {CACHE_MAX_BYTES / 2**30:.0f} GiB); {watch.summary()}")  # fmt: skip
        bench_fair_shares(server, http, files, clip)
    finally:
        files_before = server.cache_files()
        server.process.terminate()  # SIGTERM, as docker, systemd and Spaces stop a server
        server.process.wait()
        print(f"attack, SIGTERM: cache files {files_before} -> {server.cache_files()}")
        ends = server.tracebacks()
        print(f"attacks: {len(ends)} tracebacks in the server's log" + "".join(f"\n  {end}" for end in ends))
        server.close()
        http.close()
        shutil.rmtree(folder, ignore_errors=True)


#: Issue 36's malformed calls: each must be a 4xx in words, with no traceback in the log.
MALFORMED = [
    ("POST", "gradio_api/run/nosuch", {"json": {"data": []}}),
    ("POST", "gradio_api/call/live_finish", {"json": {"data": [1, 2, 3]}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": 999, "session_hash": "abc"}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": -1, "session_hash": "abc"}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": 1e6, "session_hash": "abc"}}),
    ("POST", "gradio_api/queue/join", {"content": b"not json"}),
    ("GET", "gradio_api/queue/data?session_hash=nosuch", {}),
    ("GET", "monitoring/summary", {}),
    ("GET", "gradio_api/dev/reload", {}),
]


def bench_fairness(checkpoint: Path, clip: Path) -> None:
    """`bench_fair_shares` alone against a fresh `python app.py`, with the server's tracebacks after it."""
    import httpx

    folder = Path(tempfile.mkdtemp())
    speech, rate = soundfile.read(speech_clip(10), dtype="float32")
    chunk = folder / "chunk.wav"
    soundfile.write(chunk, speech[int(rate * 0.5) : int(rate * 2.4)], rate, subtype="PCM_16")
    server, http = Server(checkpoint, options=("--behind-proxy",)), httpx.Client(timeout=120)
    try:
        bench_fair_shares(server, http, {"chunk": chunk}, clip)
        print(f"fairness: {len(server.tracebacks())} tracebacks in the server's log")
    finally:
        server.close()
        http.close()
        shutil.rmtree(folder, ignore_errors=True)


def bench_fair_shares(server: Server, http, files: dict[str, Path], clip: Path) -> None:
    """Issue 36's seven items against the same server: four full-size downloads at once (first, while the server is
    fresh), malformed calls, made-up sessions, a 2.6 GB upload fill, a hijacked live recording, live tricklers, the
    development routes."""
    import threading

    import httpx

    from voice2face.web.limits import CACHE_MAX_BYTES, MAX_SESSIONS

    with Watch(server) as watch, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda k: page_event(http, server, "download_full_size", [None, "example"], f"download{k}", last=True,
                                                     deadline_s=300), range(4)))  # fmt: skip
        print(f"attack, 4 full-size downloads at once: {sum('voice2face-faces-full-size' in str(a) for a in answers)} drawn; {watch.summary()}")
    statuses = [http.request(method, server.url + path, **kwargs).status_code for method, path, kwargs in MALFORMED]
    print(f"attack, {len(MALFORMED)} malformed calls: statuses {statuses}; tracebacks so far {len(server.tracebacks())}")
    before = server.total_rss_mib()
    for k in range(2000):
        page_event(http, server, "retune", [None, "x", 50, 0, 0], f"madeup{k}", last=True)
    print(f"attack, 2,000 made-up sessions: server+workers {before:.0f} -> {server.total_rss_mib():.0f} MiB (at most {MAX_SESSIONS} held)")
    victim = uploaded(http, server, clip)
    big = Path(tempfile.mkdtemp()) / "big.wav"
    soundfile.write(big, np.zeros(int(49.9 * 2**20) // 2, np.int16), 16000, subtype="PCM_16")
    largest, done, refused, sent = [0], [False], [0], [0]

    def meter():
        while not done[0]:
            largest[0] = max(largest[0], server.cache_bytes())
            time.sleep(0.1)

    def upload(_):
        answer = http.post(server.url + "gradio_api/upload", files={"files": (f"{time.time_ns()}.wav", big.read_bytes())})
        refused[0] += answer.status_code != 200
        sent[0] += big.stat().st_size

    watcher = threading.Thread(target=meter)
    watcher.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(upload, range(52)))  # 2.6 GB
    done[0] = True
    watcher.join()
    drawn = page_event(http, server, "draw_page", [victim, ["1 s"], ""], "victim", last=True)
    print(f"attack, 4 threads uploading 52 files of 49.9 MB ({sent[0] / 2**30:.1f} GB): {refused[0]} refused; cache at most "
          f"{largest[0] / 2**20:.0f} MiB (bound {CACHE_MAX_BYTES / 2**20:.0f} MiB); the visitor's earlier upload drawn: "
          f"{'faces' if 'v2f-faces' in str(drawn[0]) else str(drawn)[:80]!r}")  # fmt: skip
    big.unlink()
    owner_caption = page_event(http, server, "live_update", [uploaded(http, server, files["chunk"]), ""], "owner")
    token = owner_caption[2] if isinstance(owner_caption[2], str) else ""
    page_event(http, server, "live_update", [uploaded(http, server, files["chunk"]), token], "owner")
    forged = live_chunk(http, server, files["chunk"], "owner", token="made-up")
    stranger = page_event(http, server, "live_finish", [["1 s"], "", ""], "owner", last=True)
    own = page_event(http, server, "live_finish", [["1 s"], "", token], "owner", last=True)
    print(f"attack, a stranger with a visitor's session id: chunk {forged[:50]!r}; stop {str(stranger[0])[:50]!r}; the visitor's "
          f"own stop: {'faces' if 'v2f-faces' in str(own[0]) else str(own)[:60]!r}")  # fmt: skip
    tricklers = httpx.Client(timeout=120, headers={"X-Forwarded-For": "203.0.113.7"})  # one client behind the proxy
    visitor = httpx.Client(timeout=120, headers={"X-Forwarded-For": "198.51.100.9"})
    start, held = time.monotonic(), []
    for k in range(8):
        held.append(not live_chunk(tricklers, server, files["chunk"], f"trickler{k}").startswith(("The live view is full", "Your address")))
    got, sent_at = None, time.monotonic()
    while got is None and time.monotonic() - start < 90:
        if time.monotonic() - sent_at >= 10:  # 32 KB every 10 s each
            sent_at = time.monotonic()
            for k in range(8):
                live_chunk(tricklers, server, files["chunk"], f"trickler{k}")
        caption = live_chunk(visitor, server, files["chunk"], f"real{int(time.monotonic())}")
        got = time.monotonic() - start if not caption.startswith(("The live view is full", "Your address")) else None
        time.sleep(1)
    print(f"attack, one client opening 8 live recordings and trickling 32 KB every 10 s: {sum(held)} held; a real visitor "
          f"got a place after {got or float('nan'):.0f} s")  # fmt: skip
    reload = http.get(server.url + "gradio_api/dev/reload").status_code
    print(f"attack, /gradio_api/dev/reload -> {reload}; /monitoring/summary -> {http.get(server.url + 'monitoring/summary').status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--parts", default="startup,browser,live,load,hostile,attacks")
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--live-seconds", type=float, default=120)
    parser.add_argument("--screenshots", type=Path, default=None, help="also save the page's screenshots here")
    parser.add_argument("--baseline", type=Path, default=None, help="with startup and browser: another checkout whose app.py is started (and asked) in turn with ours")
    parser.add_argument("--starts", type=int, default=3, help="with --baseline: starts of each, cold and warm")
    args = parser.parse_args()
    from voice2face import DEFAULT_CHECKPOINT

    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    parts = set(args.parts.split(","))
    # gradio_client leaves an empty folder in the temp folder for every file it downloads (2,000 in one run of the load):
    # this run's temp folder is one of its own, removed at the end
    tempfile.tempdir = tempfile.mkdtemp(prefix="v2f-bench-")
    atexit.register(shutil.rmtree, tempfile.tempdir, ignore_errors=True)
    clip = speech_clip(10)
    print(f"checkpoint: {checkpoint}; {os.cpu_count()} CPU cores")
    if "live" in parts:
        bench_live_in_process(args.live_seconds, checkpoint)
    if "attacks" in parts:
        bench_attacks(checkpoint, clip)
    elif "fairness" in parts:  # issue 36's items alone, against a fresh server
        bench_fairness(checkpoint, clip)
    model_cache = Path(tempfile.mkdtemp(prefix="v2f-bench-models-"))
    reference = reference_seconds()
    print(f"reference conv stack (six 3x3 convs, 64 channels, 128x128, 2 threads): {1000 * reference:.1f} ms")
    if "startup" in parts:  # cold: nothing compiled yet; the server below starts warm from what this one kept
        cold = Server(checkpoint, model_cache)
        memory, faces = cold.memory_mib(), cold.first_faces_s(clip)
        print(f"start-up, cold (no compiled networks kept): {cold.startup_s:.2f} s to the first served page "
              f"(includes one warm-up request), {faces:.2f} s to the first served faces; server memory at rest {memory:.0f} MiB")
        cold.close()
    server = Server(checkpoint, model_cache)  # from here on our compile cache is filled
    compared: dict[Path, Path] = {}  # with --baseline: each checkout's compile cache, the baseline's filled once
    try:
        kept = "warm (compiled networks read back)" if "startup" in parts else "cold (no compiled networks kept)"
        memory, faces = server.memory_mib(), server.first_faces_s(clip)
        print(f"start-up, {kept}: {server.startup_s:.2f} s to the first served page, {faces:.2f} s to the first served faces; "
              f"server memory at rest {memory:.0f} MiB")
        if args.baseline:
            compared = {ROOT: model_cache, args.baseline.resolve(): filled_cache(checkpoint, args.baseline.resolve())}
        if compared and "startup" in parts:
            bench_startup_against(compared, checkpoint, clip, args.starts)
        if "browser" in parts:
            bench_browser(server, clip, args.requests, checkpoint, reference)
            if compared:
                bench_served_against(compared, checkpoint, clip, args.requests)
        if args.screenshots:
            save_screenshots(server, args.screenshots)
        if "live" in parts:
            bench_live_browser(server, args.live_seconds)
        if "hostile" in parts:  # before the load, so the server's peak memory is still its own
            bench_hostile(server, clip)
        if "load" in parts:
            bench_load(server, clip)
    finally:
        server.close()
        for cache in {model_cache, *compared.values()}:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"this process's peak memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
