"""The web demo: its logic directly, its API through gradio_client, and its page in Chromium."""

from __future__ import annotations

import shutil
import socket
import subprocess

import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from voice2face import Voice2Face, Voice2FaceError
from voice2face.webui import DEFAULT_CHOICES, demo_request, display_levels, durations_from_choices, example_clips, model_card


@pytest.fixture(scope="module")
def model(random_checkpoint) -> Voice2Face:
    return Voice2Face.from_pretrained(random_checkpoint)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model, random_checkpoint):
    demo = app.build_demo(model, random_checkpoint)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, share=False, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


# --------------------------------------------------------------------------- logic


def test_durations_from_choices_adds_free_text_and_sorts():
    assert durations_from_choices(["8 s", "whole clip", "1 s"], "3, 12.5") == (1.0, 3.0, 8.0, 12.5, None)
    with pytest.raises(Voice2FaceError, match="at least one"):
        durations_from_choices([], "")
    with pytest.raises(Voice2FaceError, match="positive"):
        durations_from_choices(["1 s"], "-4")


def test_linear_mel_energies_are_drawn_in_decibels():
    energies = np.array([[1e-30, 1e-6, 1e-3], [1e-2, 0.1, 1.0]])
    drawn = display_levels(energies, log_compressed=False)
    assert drawn.max() == pytest.approx(0.0) and drawn.min() == pytest.approx(-80.0)  # 80 dB below the peak, not -300
    assert drawn[0, 2] == pytest.approx(-30.0)
    log_mels = np.array([[-2.0, 0.5], [1.0, 3.0]])
    assert np.array_equal(display_levels(log_mels, log_compressed=True), log_mels)


def test_demo_request_gives_everything_the_page_shows(model, speech_wav):
    out = demo_request(model, str(speech_wav), DEFAULT_CHOICES)
    assert len(out.gallery) == 5
    assert all(face.size == (192, 192) for face, _ in out.gallery)
    assert [caption for _, caption in out.gallery][:4] == ["1.0 s", "2.0 s", "4.0 s", "8.0 s"]
    assert list(out.settle["seconds of speech"][:4]) == [1.0, 2.0, 4.0, 8.0]
    assert out.settle["similarity to whole clip"].iloc[-1] == pytest.approx(1.0, abs=1e-3)
    assert out.spectrogram.width > 400 and out.strip.width > 5 * 160
    assert "of speech" in out.notes


def test_no_audio_is_a_clear_message(model):
    with pytest.raises(Voice2FaceError, match="Record or upload"):
        demo_request(model, None, DEFAULT_CHOICES)


def test_model_card_warns_about_untrained_models(model, random_checkpoint):
    text = model_card(model, random_checkpoint)
    assert "nothing (random init)" in text and "untrained" in text


def test_bundled_examples_exist_and_hold_speech(model):
    clips = example_clips()
    assert len(clips) >= 2
    for clip in clips:
        assert model.faces_for_durations(clip, (None,)).utterance.speech_seconds > 5


# --------------------------------------------------------------------------- API


def test_api_returns_faces_captions_and_plot(server, speech_wav):
    client = Client(server, verbose=False)
    gallery, settle, spectrogram, strip, notes = client.predict(
        handle_file(str(speech_wav)), ["1 s", "2 s", "4 s", "whole clip"], "", api_name="/faces"
    )
    assert len(gallery) == 4
    sizes = {Image.open(item["image"]).size for item in gallery}
    assert sizes == {(192, 192)}
    assert [item["caption"] for item in gallery][:3] == ["1.0 s", "2.0 s", "4.0 s"]
    assert [row[0] for row in settle["data"]][:3] == [1.0, 2.0, 4.0] and len(settle["data"]) == 4
    assert Image.open(spectrogram).width > 400 and Image.open(strip).width > 4 * 160
    assert "of speech" in notes


def test_api_silence_is_an_error_then_the_server_still_answers(server, speech_wav, tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(32000, np.float32), 16000)
    client = Client(server, verbose=False)
    with pytest.raises(AppError, match="silent"):
        client.predict(handle_file(str(silent)), DEFAULT_CHOICES, "", api_name="/faces")
    corrupt = tmp_path / "corrupt.webm"
    corrupt.write_bytes(b"\x1aE\xdf\xa3" + bytes(200))
    with pytest.raises(AppError, match="Could not decode"):
        client.predict(handle_file(str(corrupt)), DEFAULT_CHOICES, "", api_name="/faces")
    gallery, *_ = client.predict(handle_file(str(speech_wav)), ["1 s"], "", api_name="/faces")
    assert len(gallery) == 1


# --------------------------------------------------------------------------- real browser

CHROMIUM = shutil.which("chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def browser(playwright, extra_args=()):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, *extra_args])


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)")
def test_browser_upload_draws_one_face_per_length(server, speech_wav, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server)
        page.click('#voice button[aria-label="Upload file"]')
        page.set_input_files("#voice input[type=file]", str(speech_wav))
        page.wait_for_selector("#voice audio, #voice [data-testid='waveform-controls'], #voice button[aria-label='Clear']")
        page.click("#draw")
        page.wait_for_function("document.querySelectorAll('#faces img').length >= 5", timeout=60000)
        faces = page.query_selector_all("#faces img")
        page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
        b.close()
    assert len(faces) == 5


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)")
def test_browser_microphone_recording_draws_faces(server, speech_wav, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(
            p,
            [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={speech_wav}",
            ],
        )
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server)
        page.click("#voice button.record")
        # record until the recorder's own clock shows 4 s, then stop and wait for the clip to be in place
        page.wait_for_function(
            "[...document.querySelectorAll('#voice time')].some(t => /^0:0[4-9]$/.test(t.textContent.trim()))", timeout=20000
        )
        page.click("#voice button.stop-button")
        page.wait_for_selector("#voice button[aria-label='Clear']", timeout=20000)
        page.wait_for_selector("#voice audio, #voice [data-testid='waveform-controls']", state="attached", timeout=20000)
        page.click("#draw")
        page.wait_for_function("document.querySelector('#notes').innerText.includes('of speech')", timeout=60000)
        count = len(page.query_selector_all("#faces img"))
        page.screenshot(path=str(tmp_path / "microphone.png"), full_page=True)
        b.close()
    assert 3 <= count <= 4  # about 4 s recorded: 1, 2 and maybe 4 s, then the whole clip once (8 s is the same speech)


def test_app_refuses_a_missing_checkpoint_without_a_traceback(tmp_path):
    proc = subprocess.run(
        ["python", "app.py", "--checkpoint", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "No checkpoint directory" in proc.stderr and "Traceback" not in proc.stderr
