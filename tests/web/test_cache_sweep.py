"""The web server's cache sweep: bounded by age and size, never dies, empties the cache at shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from voice2face.web.cache_sweep import CacheSweeper

from ..conftest import free_port


def make(folder: Path, name: str, size: int, age_s: float) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_old_files_then_the_oldest_over_the_size_cap_go_and_kept_files_stay(tmp_path):
    old = make(tmp_path, "a/old.wav", 100, 1000)
    empty_young = tmp_path / "c"
    empty_young.mkdir()  # an upload's folder, its file about to be written
    kept = make(tmp_path, "page/example.png", 100, 5000)
    young = [make(tmp_path, f"b/young{k}.wav", 100, 100 - k * 10) for k in range(5)]  # young0 the oldest
    sweeper = CacheSweeper(tmp_path, 60, 300, max_bytes=300, keep=lambda: {str(kept)})
    sweeper.sweep()
    assert not old.exists() and kept.exists() and not (tmp_path / "a").exists()  # an emptied folder goes too
    assert empty_young.exists()
    assert [p.exists() for p in young] == [False, False, True, True, True]  # the oldest go first, to 300 bytes


def test_the_sweep_survives_files_appearing_and_vanishing_while_it_runs(tmp_path):
    stop = threading.Event()

    def busy(k: int) -> None:  # uploads arriving and finishing during the sweep, as under load
        n = 0
        while not stop.is_set():
            try:
                path = make(tmp_path, f"up{k}/{n % 200}.wav", 10, 1000 * (n % 2))  # at most 800 files at once
                if n % 3 == 0:
                    path.unlink(missing_ok=True)
            except FileNotFoundError:  # swept (file or emptied folder) between its writing and its ageing
                pass  # the next upload comes all the same; this thread used to die here, and the load with it
            n += 1

    workers = [threading.Thread(target=busy, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    try:
        sweeper = CacheSweeper(tmp_path, 60, 300, max_bytes=10**9)
        for _ in range(50):
            sweeper.sweep()  # raises nothing, however the folder changes under it
    finally:
        stop.set()
        for w in workers:
            w.join()
    sweeper.sweep()
    assert all(time.time() - p.stat().st_mtime <= 300 for p in tmp_path.rglob("*") if p.is_file())


def test_a_failing_sweep_is_logged_and_the_next_one_runs(tmp_path, caplog):
    calls = []

    def keep():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Set changed size during iteration")
        return set()

    make(tmp_path, "old.wav", 10, 1000)
    sweeper = CacheSweeper(tmp_path, 0.05, 300, 10**9, keep=keep).start()
    deadline = time.monotonic() + 10
    while (tmp_path / "old.wav").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sweeper.clear()
    assert not (tmp_path / "old.wav").exists() and len(calls) >= 2
    assert "cache sweep failed" in caplog.text


@pytest.mark.slow
def test_sigterm_empties_the_cache_as_ctrl_c_does(random_checkpoint, speech_wav, tmp_path):
    from gradio_client import Client, handle_file

    port, cache = free_port(), tmp_path / "cache"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(cache)}
    server = subprocess.Popen([sys.executable, "app.py", "--checkpoint", str(random_checkpoint), "--port", str(port)],
                              cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not serving yet
                time.sleep(0.5)
        client.predict(handle_file(str(speech_wav)), ["1 s"], "", api_name="/faces")
        assert any(p.is_file() for p in cache.rglob("*"))
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        server.kill()
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_the_cache_folder_made_for_a_process_goes_with_it_and_one_it_was_given_stays(tmp_path):
    code = "import os, pathlib, voice2face.web; d = pathlib.Path(os.environ['GRADIO_TEMP_DIR']); (d / 'x').write_text('x'); print(d)"
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    made = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert Path(made.stdout.strip()).name.startswith("voice2face-cache-") and not Path(made.stdout.strip()).exists()
    given = subprocess.run([sys.executable, "-c", code], env=env | {"GRADIO_TEMP_DIR": str(tmp_path)}, capture_output=True,
                           text=True, timeout=120, check=True)  # fmt: skip
    assert given.stdout.strip() == str(tmp_path) and (tmp_path / "x").is_file()
