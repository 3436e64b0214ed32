"""The live view: a face from the speech so far, at a constant cost per microphone chunk."""

from __future__ import annotations

import numpy as np
import pytest

from voice2face.errors import AudioError
from voice2face.images import DISPLAY_SIZE
from voice2face.live import LiveFaces
from voice2face.pipeline import Voice2Face


@pytest.fixture(scope="module")
def model(random_checkpoint) -> Voice2Face:
    return Voice2Face.from_pretrained(random_checkpoint)


def chunks(samples: np.ndarray, size: int):
    for start in range(0, len(samples), size):
        yield (samples[start : start + size] * 32767).astype(np.int16)


def test_faces_form_as_speech_arrives_with_bounded_state(model, speech):
    data, rate = speech
    live = LiveFaces(model)
    updates = [live.add(rate, chunk) for chunk in chunks(data, rate // 2)]
    drawn = [u for u in updates if u.new_face]
    assert len(drawn) >= 5 and all(u.face.size == (DISPLAY_SIZE, DISPLAY_SIZE) for u in drawn)  # the page's size
    seconds = [u.speech_seconds for u in updates]
    assert seconds == sorted(seconds) and seconds[-1] > 0.6 * len(data) / rate
    assert updates[-1].recorded_seconds == pytest.approx(len(data) / rate, abs=0.05)
    assert "s of speech" in updates[-1].caption
    # what is kept between chunks stays under one window plus one chunk, however long the recording
    assert len(live.speech) < live.window + live.rate and len(live.unvoiced) < live.vad_frame
    rate_out, recording = live.recording()
    assert rate_out == 16000 and abs(len(recording) - len(data) * 16000 / rate) < 1000  # the resampler holds back ~35 ms


def test_unchanged_speech_redraws_nothing(model, speech):
    data, rate = speech
    live = LiveFaces(model)
    for chunk in chunks(data[: 3 * rate], rate):
        live.add(rate, chunk)
    silence = live.add(rate, np.zeros(rate, np.int16))
    assert not silence.new_face and silence.face is live.face


def test_silence_only_is_listening_and_odd_input_is_an_error(model):
    live = LiveFaces(model)
    update = live.add(16000, np.zeros(16000, np.int16))
    assert update.face is None and update.caption.startswith("Listening")
    with pytest.raises(AudioError, match="changed its sample rate"):
        live.add(48000, np.zeros(48000, np.int16))
    with pytest.raises(AudioError, match="whole number of Hz"):
        LiveFaces(model).add("fast", np.zeros(10, np.int16))
    with pytest.raises(AudioError, match="Nothing was recorded"):
        LiveFaces(model).recording()
