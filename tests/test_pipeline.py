"""The inference pipeline: several clip lengths, one batch, honest metadata."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from voice2face.errors import AudioError, Voice2FaceError
from voice2face.pipeline import Voice2Face

from .conftest import TEXT, speak


@pytest.fixture(scope="module")
def model(random_checkpoint) -> Voice2Face:
    return Voice2Face.from_pretrained(random_checkpoint)


def test_faces_for_durations(model, speech_wav):
    result = model.faces_for_durations(speech_wav, (1, 2, 4, 100, None))
    assert len(result.images) == 4  # 100 s of a shorter clip is the whole clip: one face, not two
    assert all(im.size == (64, 64) and im.mode == "RGB" for im in result.images)
    assert result.seconds[:3] == pytest.approx([1.0, 2.0, 4.0])
    total = result.utterance.speech_seconds
    assert result.seconds[3] == pytest.approx(total, abs=0.02) and result.cuts[3].requested is None
    assert any("Asked for 100 s" in note and "one face" in note for note in result.notes)
    assert result.embeddings.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1, atol=1e-5)
    similarity = result.similarity_to_longest()
    assert similarity[-1] == pytest.approx(1.0, abs=1e-5) and (similarity <= 1 + 1e-5).all()
    assert result.captions[0] == "first 1.0 s of speech" and result.captions[-1].startswith("whole clip, ")


@pytest.mark.parametrize("which", ["paper", "default"])
def test_batched_faces_equal_one_length_at_a_time(which, model, speech_wav):
    # the paper's encoder (cuts normalised one by one, a padded batch) and GE2E (shared prefixes)
    if which == "default":
        model = Voice2Face.from_pretrained()
    durations = (1, 2, 4, None)
    together = model.faces_for_durations(speech_wav, durations)
    for i, d in enumerate(durations):
        alone = model.faces_for_durations(speech_wav, (d,))
        np.testing.assert_allclose(alone.embeddings[0], together.embeddings[i], atol=1e-5)
        diff = np.abs(np.asarray(alone.images[0], int) - np.asarray(together.images[i], int))
        assert diff.max() <= 1  # at most one grey level of float rounding


def test_lengths_past_the_end_of_the_speech_give_one_face(model, speech_wav):
    total = model.faces_for_durations(speech_wav, (None,)).utterance.speech_seconds
    result = model.faces_for_durations(speech_wav, (1, total + 5, total + 50, 999))
    assert len(result.images) == 2 and result.cuts[1].requested == total + 5
    assert sum("one face was drawn from all of it" in note for note in result.notes) == 1  # one note for the three
    (note,) = [n for n in result.notes if "one face" in n]
    assert note.startswith(f"Asked for {total + 5:g}, {total + 50:g} and 999 s of speech")


def test_a_length_within_a_quarter_second_of_the_whole_clip_is_the_whole_clip(model, speech_wav):
    total = model.faces_for_durations(speech_wav, (None,)).utterance.speech_seconds
    result = model.faces_for_durations(speech_wav, (1, total - 0.1, None))
    assert len(result.images) == 2 and [c.requested for c in result.cuts] == [1, None]


def test_different_lengths_give_different_embeddings(model, speech_wav):
    result = model.faces_for_durations(speech_wav, (1.0, None))
    assert not np.allclose(result.embeddings[0], result.embeddings[1], atol=1e-4)


def test_strip_has_one_tile_per_face(model, speech_wav):
    result = model.faces_for_durations(speech_wav, (1, 2, None))
    strip = result.strip(size=100)
    assert strip.width == 3 * 108 + 8 and strip.height > 100


def test_bad_durations_and_audio_raise_user_errors(model, speech_wav):
    with pytest.raises(Voice2FaceError, match="positive"):
        model.faces_for_durations(speech_wav, (0,))
    with pytest.raises(Voice2FaceError, match="positive"):
        model.faces_for_durations(speech_wav, (-3, None))
    with pytest.raises(Voice2FaceError, match="at least 1 s"):
        model.faces_for_durations(speech_wav, (0.5, None))
    with pytest.raises(AudioError, match="silent"):
        model.faces_for_durations((16000, np.zeros(16000, np.int16)))


def test_no_face_is_drawn_from_under_a_second_of_speech(model, speech):
    samples, rate = speech
    with pytest.raises(AudioError, match=r"Only 0\.\d s of speech were heard; a face needs at least 1 s"):
        model.faces_for_durations((rate, samples[: int(0.9 * rate)]))


def test_call_returns_the_whole_clip_face(model, speech_wav):
    face = model(speech_wav)
    assert face.size == (64, 64)
    whole = model.faces_for_durations(speech_wav, (None,)).images[0]
    assert np.array_equal(np.asarray(face), np.asarray(whole))


def test_the_whole_clips_face_is_drawn_before_the_shorter_lengths_are_heard(monkeypatch):
    """Issue 34: the first face leaves as soon as it exists. CAM++ hears the 1, 2 and 4 s of a long clip in passes of
    their own; the whole clip's face (and the 30 s face, pooled from the whole clip's pass) must not wait for them."""
    model = Voice2Face.from_pretrained()
    clip = speak(Path(tempfile.mkdtemp()) / "long.wav", " ".join([TEXT] * 3))  # about 38 s of speech
    events = []
    frame_level, draw = model.voice_encoder.frame_level, model.draw
    monkeypatch.setattr(model.voice_encoder, "frame_level", lambda x: events.append(("hear", x.shape[-1])) or frame_level(x))
    monkeypatch.setattr(model, "draw", lambda *a: events.append(("draw",)) or draw(*a))
    durations = (1, 2, 4, 30, None)
    steps = list(model.stream(clip, durations, size=64))
    whole = steps[0].cuts[steps[0].longest].frames
    assert 3000 / 0.75 >= whole >= 3000  # the 30 s face shares the whole clip's pass
    assert events == [("hear", whole), ("draw",), ("draw",), ("hear", 400), ("draw",), ("hear", 200), ("draw",), ("hear", 100), ("draw",)]
    heard = [int((~np.isnan(step.embeddings).any(axis=1)).sum()) for step in steps]
    assert heard == [2, 2, 3, 4, 5]  # NaN rows until their length is heard
    np.testing.assert_array_equal(steps[-1].embeddings, model.plan(clip, durations).embeddings)


def test_serving_traces_the_voice_graph_while_the_face_graph_is_traced(monkeypatch):
    """Issue 34: a first start traced CAM++ (in a child process) only after the face graph; the two now overlap."""
    pytest.importorskip("openvino", reason="openvino is in requirements.txt: pip install -r requirements.txt")
    model = Voice2Face.from_pretrained()
    voice_started, compiled = threading.Event(), []

    def compile_voice(cache_dir):
        voice_started.set()
        compiled.append(("voice", cache_dir))
        return True

    def compile_faces(cache_dir):
        overlapped = voice_started.wait(timeout=10)  # never set while the faces are compiled, if the voice waits for them
        compiled.append(("faces", cache_dir, overlapped))
        return True

    monkeypatch.setattr(model.voice_encoder, "compile_for_cpu", compile_voice)
    monkeypatch.setattr(model.generator, "compile_for_cpu", compile_faces)
    assert model.serve_with_openvino("/cache")
    assert sorted(compiled) == [("faces", "/cache", True), ("voice", "/cache")]
