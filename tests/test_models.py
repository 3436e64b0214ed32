"""The paper's networks: shapes, value ranges, widths, and padding-safe batching."""

from __future__ import annotations

import pytest
import torch

from voice2face.audio.front_end import FrontEndConfig
from voice2face.errors import Voice2FaceError
from voice2face.models import (
    Discriminator,
    FaceEmbedder,
    Generator,
    GeneratorConfig,
    IdentityClassifier,
    VoiceEmbedder,
    VoiceEncoderConfig,
    build_voice_encoder,
)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_voice_embedder_gives_unit_64d_vectors():
    torch.manual_seed(0)
    out = VoiceEmbedder().eval()(torch.randn(3, 64, 250))
    assert out.shape == (3, 64)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_generator_gives_64x64_rgb_in_range():
    out = Generator()(torch.nn.functional.normalize(torch.randn(2, 64), dim=1))
    assert out.shape == (2, 3, 64, 64)
    assert out.min() >= -1 and out.max() <= 1 and out.std() > 0


def test_face_embedder_and_heads():
    emb = FaceEmbedder()(torch.rand(5, 3, 64, 64) * 2 - 1)
    assert emb.shape == (5, 64)
    assert Discriminator(64)(emb).shape == (5,)
    assert IdentityClassifier(64, 17)(emb).shape == (5, 17)


def test_parameter_counts_follow_the_papers_widths():
    voice = (64, 256, 384, 576, 864)  # conv widths of Wen et al. 2019, then a 864 -> 64 conv
    expected_voice = sum(3 * a * b + 2 * b for a, b in zip(voice[:-1], voice[1:])) + 3 * 864 * 64 + 64
    assert n_params(VoiceEmbedder()) == expected_voice

    gen = (64, 1024, 512, 256, 128, 64)
    expected_gen = sum(16 * a * b + b for a, b in zip(gen[:-1], gen[1:])) + 64 * 3 + 3
    assert n_params(Generator()) == expected_gen

    face = (32, 64, 128, 256, 512)
    expected_face = (3 * 32 + 32) + sum(16 * a * b + b for a, b in zip(face[:-1], face[1:])) + 16 * 512 * 64 + 64
    assert n_params(FaceEmbedder()) == expected_face


@pytest.mark.parametrize("lengths", [(300, 100, 37, 1), (64, 63, 33, 32)])
def test_padded_batch_matches_one_clip_at_a_time(lengths):
    torch.manual_seed(0)
    model = VoiceEmbedder().eval()
    with torch.no_grad():  # give batch norm non-trivial statistics
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    clips = [torch.randn(64, n) for n in lengths]
    batch = torch.zeros(len(clips), 64, max(lengths))
    for i, c in enumerate(clips):
        batch[i, :, : c.shape[1]] = c
    with torch.no_grad():
        together = model(batch, torch.tensor(lengths))
        alone = torch.cat([model(c[None]) for c in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_generator_input_width_follows_the_encoder():
    from voice2face.models import build_generator

    for backend, channels in (("wen2019", (16, 8, 8, 8, 8)), ("face-space", (16, 8, 8, 8))):
        generator = build_generator(GeneratorConfig(backend=backend, channels=channels), embedding_dim=48)
        assert generator(torch.randn(2, 48)).shape == (2, 3, 64, 64), backend


def test_unknown_voice_backend_is_named():
    with pytest.raises(Voice2FaceError, match="nonsense"):
        build_voice_encoder(VoiceEncoderConfig(backend="nonsense"), FrontEndConfig())


def test_standardised_generator_input_uses_the_fitted_statistics():
    torch.manual_seed(0)
    plain = Generator(GeneratorConfig(channels=(16, 8, 8, 8, 8)), embedding_dim=8)
    standardised = Generator(GeneratorConfig(channels=(16, 8, 8, 8, 8), standardise_input=True), embedding_dim=8)
    standardised.load_state_dict(plain.state_dict(), strict=False)
    voices = torch.randn(50, 8) * 0.05 + 0.3
    standardised.standardise.fit(voices)
    stats = standardised.standardise
    assert torch.allclose(stats.input_mean, voices.mean(0)) and torch.allclose(stats.input_std, voices.std(0))
    x = voices[:3]
    torch.testing.assert_close(standardised(x), plain((x - voices.mean(0)) / voices.std(0)))
    assert "standardise.input_mean" in standardised.state_dict()  # saved with the checkpoint
