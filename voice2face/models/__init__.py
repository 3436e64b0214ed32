"""Every network of voice2face, by part of the method.

- `config`: the frozen dataclasses that rebuild them from a checkpoint.
- `voice`: voice encoders (the paper's, pretrained GE2E) and the speaker head.
- `paper`: Wen et al.'s generator, face embedder, discriminator and identity heads.
- `face_space`: a decoder of real faces, a face attribute net, and the voice-to-latent map.
"""

from __future__ import annotations

from torch import nn

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
from .paper import Discriminator, FaceCritic, FaceEmbedder, Generator, GraderNetwork, IdentityClassifier
from .style_map import StyleVoiceMap, VoiceReading
from .stylegan import MappingNetwork, SynthesisNetwork
from .voice import GE2E_CONFIG, GE2E_FRONT_END, GE2EEncoder, SpeakerClassifier, VoiceEmbedder, VoiceEncoder, build_voice_encoder


def build_generator(config: GeneratorConfig, embedding_dim: int) -> nn.Module:
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
]  # fmt: skip
