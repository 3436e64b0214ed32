"""The pretrained GE2E voice encoder that ships in checkpoints/ge2e (weights from the resemblyzer wheel)."""

from __future__ import annotations

import pytest
import torch

from voice2face.audio.front_end import FrontEndConfig, log_mel, prepare_utterance
from voice2face.checkpoint import load_network, read_info
from voice2face.models import GE2E_CONFIG, GE2E_FRONT_END, GE2EEncoder
from voice2face.paths import GE2E_CHECKPOINT

from .conftest import speak


@pytest.fixture(scope="module")
def encoder() -> GE2EEncoder:
    return load_network(GE2E_CHECKPOINT, "voice_encoder")


def test_shipped_ge2e_checkpoint_is_the_ge2e_shape_and_front_end():
    info = read_info(GE2E_CHECKPOINT)
    assert info.kind == "voice-encoder" and info.model.voice == GE2E_CONFIG and info.front_end == GE2E_FRONT_END
    assert "resemblyzer" in info.trained_on and "Apache-2.0" in info.trained_on


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


@pytest.mark.parametrize("lengths", [
    [100, 200, 400, 800, 1000],  # the app's 1, 2, 4, 8 s and whole clip
    [37, 159, 160, 161, 239, 240, 1000],  # partials shorter than 1.6 s, ends on and off the 0.8 s grid
    [50],
])  # fmt: skip
def test_prefixes_share_partials_and_match_one_clip_at_a_time(encoder, lengths):
    torch.manual_seed(0)
    clip = torch.rand(40, 1000)
    with torch.no_grad():
        shared = encoder.embed_prefixes(clip, lengths)
        alone = torch.cat([encoder(clip[None, :, :n]) for n in lengths])
    torch.testing.assert_close(shared, alone, atol=1e-5, rtol=1e-4)


def test_prefixes_run_the_lstm_once_per_partial_start(encoder, monkeypatch):
    lengths = [100, 200, 400, 800, 1000]
    every = sum(len(encoder.partial_spans(n)) for n in lengths)
    starts = len({s for n in lengths for s, _ in encoder.partial_spans(n)})
    assert (every, starts) == (26, 11)  # the 1 s prefix's partial is read off the run that starts where it does
    batches = []
    lstm = encoder.lstm.forward
    monkeypatch.setattr(encoder.lstm, "forward", lambda x, *a: batches.append(x.shape[:2]) or lstm(x, *a))
    with torch.no_grad():
        encoder.embed_prefixes(torch.rand(40, 1000), lengths)
    assert batches == [(11, 160)]  # one call: 11 rows of 1.6 s, not 26 partials


def test_front_end_gain_normalisation_makes_level_irrelevant(speech):
    data, _ = speech
    loud, quiet = log_mel(data, GE2E_FRONT_END), log_mel(data * 0.05, GE2E_FRONT_END)
    torch.testing.assert_close(loud, quiet, rtol=1e-3, atol=1e-6)
    assert not torch.allclose(log_mel(data, FrontEndConfig()), log_mel(data * 0.05, FrontEndConfig()))
