"""The pretrained GE2E voice encoder backend (weights from the resemblyzer wheel) and its install."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

from voice2face.audio import FrontEndConfig, log_mel, prepare_utterance
from voice2face.models import GE2E_CONFIG, GE2E_FRONT_END, GE2EEncoder, build_voice_encoder, pretrained_ge2e_state

from conftest import speak


def test_resemblyzer_imports_with_one_working_webrtcvad():
    import resemblyzer  # noqa: F401  (its import pulls webrtcvad and pkg_resources-free paths)
    import webrtcvad

    assert importlib.metadata.version("webrtcvad").endswith(".post99")  # our stand-in, not the old sdist
    assert importlib.metadata.version("webrtcvad-wheels")
    assert webrtcvad.Vad(2).is_speech(b"\x00" * 640, 16000) is False


@pytest.fixture(scope="module")
def encoder() -> GE2EEncoder:
    model = build_voice_encoder(GE2E_CONFIG, GE2E_FRONT_END)
    model.load_state_dict(pretrained_ge2e_state())
    return model.eval()


def embed(encoder, path) -> torch.Tensor:
    features = prepare_utterance(path, GE2E_FRONT_END).features
    with torch.no_grad():
        return encoder(features[None])[0]


def test_pretrained_encoder_tells_speakers_apart(encoder, tmp_path):
    text_a = "The early train leaves at seven, so pack your bags tonight and sleep well."
    text_b = "Bright colours and loud music filled the hall during the summer festival."
    male_a = embed(encoder, speak(tmp_path / "ma.wav", text_a, "en+m3", 30))
    male_b = embed(encoder, speak(tmp_path / "mb.wav", text_b, "en+m3", 30))
    female = embed(encoder, speak(tmp_path / "f.wav", text_b, "en+f4", 80))
    assert male_a.shape == (256,) and torch.linalg.norm(male_a) == pytest.approx(1, abs=1e-5)
    assert float(male_a @ male_b) > float(male_a @ female) + 0.1  # same voice, other words: closer


def test_ge2e_batch_matches_single_clips(encoder):
    torch.manual_seed(0)
    clips = [torch.rand(40, n) for n in (400, 170, 90)]
    batch = torch.zeros(3, 40, 400)
    for i, c in enumerate(clips):
        batch[i, :, : c.shape[1]] = c
    with torch.no_grad():
        together = encoder(batch, torch.tensor([400, 170, 90]))
        alone = torch.cat([encoder(c[None]) for c in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_prefixes_share_partials_and_match_one_clip_at_a_time(encoder):
    torch.manual_seed(0)
    clip = torch.rand(40, 1000)
    lengths = [100, 200, 400, 800, 1000]  # the app's 1, 2, 4, 8 s and whole clip
    with torch.no_grad():
        shared = encoder.embed_prefixes(clip, lengths)
        alone = torch.cat([encoder(clip[None, :, :n]) for n in lengths])
    torch.testing.assert_close(shared, alone, atol=1e-5, rtol=1e-4)
    every = sum(len(encoder.partial_spans(n)) for n in lengths)
    distinct = len({span for n in lengths for span in encoder.partial_spans(n)})
    assert (every, distinct) == (26, 12)  # what sharing saves here: 14 of 26 LSTM runs


def test_front_end_gain_normalisation_makes_level_irrelevant(speech):
    data, _ = speech
    loud, quiet = log_mel(data, GE2E_FRONT_END), log_mel(data * 0.05, GE2E_FRONT_END)
    torch.testing.assert_close(loud, quiet, rtol=1e-3, atol=1e-6)
    assert not torch.allclose(log_mel(data, FrontEndConfig()), log_mel(data * 0.05, FrontEndConfig()))
