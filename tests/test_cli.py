"""The command line writes the files it promises and never prints a traceback for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image

from .conftest import run_main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The command as a user types it, in its own process."""
    return subprocess.run([sys.executable, "-m", "voice2face", *args], capture_output=True, text=True, timeout=300)


def test_generate_writes_one_png_per_length_and_a_strip(speech_wav, random_checkpoint, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("generate", str(speech_wav), "--durations", "1", "2", "4", "8", "full",
                   "-o", str(out), "--checkpoint", str(random_checkpoint), "--size", "128")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["face_1s.png", "face_2s.png", "face_4s.png", "face_8s.png", "face_full.png", "strip.png"]
    assert Image.open(out / "face_1s.png").size == (128, 128)
    assert Image.open(out / "strip.png").width > 5 * 128
    assert "first 4.0 s of speech" in proc.stdout
    # the whole clip's seconds read the same in its caption and in the summary line (as on the page and in the API)
    whole = proc.stdout.split("whole clip, ")[1].split(" of speech")[0]
    assert f"Heard {whole} of speech in" in proc.stdout


def test_a_tone_is_refused_in_words_for_a_terminal(random_checkpoint, tmp_path):
    tone = tmp_path / "tone.wav"
    t = np.arange(3 * 16000) / 16000
    soundfile.write(tone, 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    proc = run_cli("generate", str(tone), "--checkpoint", str(random_checkpoint), "-o", str(tmp_path / "o"))
    assert proc.returncode == 2 and "tone, noise or music" in proc.stderr and "Traceback" not in proc.stderr
    assert "upload" not in proc.stderr.lower() and "record" not in proc.stderr.lower()  # the page's words, not a terminal's


def test_bad_audio_is_one_clear_line_not_a_traceback(random_checkpoint, tmp_path, capsys):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000), 16000)
    proc = run_main(capsys, "generate", str(silent), "--checkpoint", str(random_checkpoint), "-o", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "silent" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_checkpoint_is_a_clear_error(speech_wav, tmp_path, capsys):
    proc = run_main(capsys, "generate", str(speech_wav), "--checkpoint", str(tmp_path / "none"))
    assert proc.returncode == 2 and "No checkpoint directory" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_duration_is_a_clear_error(speech_wav, random_checkpoint, capsys):
    proc = run_main(capsys, "generate", str(speech_wav), "--durations", "0", "--checkpoint", str(random_checkpoint))
    assert proc.returncode == 2 and "positive" in proc.stderr


def test_help_explains_every_flag():
    proc = run_cli("generate", "--help")
    assert proc.returncode == 0
    for flag in ("--durations", "--output", "--checkpoint", "--device", "--size", "--max-seconds"):
        assert flag in proc.stdout


def test_init_random_writes_a_loadable_labelled_checkpoint(tmp_path, capsys):
    proc = run_main(capsys, "init-random", str(tmp_path / "r"), "--generator-channels", "32", "16", "8", "8", "8")
    assert proc.returncode == 0, proc.stderr
    from voice2face import Voice2Face

    assert Voice2Face.from_pretrained(tmp_path / "r").info.trained_on == "nothing (random init)"


@pytest.mark.parametrize("bad, says", [
    (["-o", "{file}"], "is a file, not a folder"),
    (["-o", "{file}/faces"], "Cannot make the folder"),
    (["-o", "/proc/voice2face-faces"], "Cannot make the folder"),
    (["-o", "/dev/full"], "is a file, not a folder"),
    (["--device", "potato"], "Unknown device 'potato'"),
    (["--size", "5"], "--size must be 64 to 1024"),
    (["--max-seconds", "nan"], "--max-seconds must be a positive number"),
])  # fmt: skip
def test_bad_arguments_are_one_line_before_any_work(speech_wav, random_checkpoint, tmp_path, capsys, bad, says):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    args = [a.replace("{file}", str(file)) for a in bad]
    proc = run_main(capsys, "generate", str(speech_wav), "--checkpoint", str(random_checkpoint), *args)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""  # nothing was drawn or written


def test_argument_mistakes_are_answered_before_pytorch_is_imported(speech_wav, random_checkpoint):
    """A mistyped --size, --max-seconds or length is told at once, not after a second of importing PyTorch."""
    for bad in (["--size", "5"], ["--max-seconds", "-1"], ["--durations", "1", "x"]):
        code = ("import sys; from voice2face.cli import main; "
                f"code = main(['generate', {str(speech_wav)!r}, '--checkpoint', {str(random_checkpoint)!r}, *{bad!r}]); "
                "print(code, 'torch' in sys.modules)")  # fmt: skip
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.stdout.split() == ["2", "False"] and proc.stderr.startswith("error: "), (bad, proc.stdout, proc.stderr)
