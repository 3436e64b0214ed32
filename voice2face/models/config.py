"""The configs of every network: plain frozen dataclasses, stored in each checkpoint's config.json.

Every width is a field with the paper's value as default, so a checkpoint
rebuilds exactly the networks it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VOICE_BACKENDS = ("wen2019", "ge2e", "campplus")
GENERATOR_BACKENDS = ("wen2019", "face-space", "stylegan")


@dataclass(frozen=True)
class VoiceEncoderConfig:
    """Which voice encoder, and its widths. `backend` picks the class."""

    backend: str = "wen2019"
    n_mels: int = 64
    channels: tuple[int, ...] = (256, 384, 576, 864)
    embedding_dim: int = 64  # the unit speaker embedding
    # numbers that follow it in the encoder's output (CAM++: the 1024 frame statistics its embedding is
    # pooled from, which tell gender and age far better than the embedding does); 0: none
    statistics_dim: int = 0

    @property
    def output_dim(self) -> int:
        """Width of what the encoder gives the generator: the speaker embedding, then the statistics."""
        return self.embedding_dim + self.statistics_dim


@dataclass(frozen=True)
class GeneratorConfig:
    """Voice embedding -> face. The input width is the voice encoder's `embedding_dim`.

    - 'wen2019': the paper's six transposed convs straight from the embedding
      (`channels` are their widths).
    - 'face-space': a mapping network (`mapping_layers` x `mapping_width`) from
      the embedding to the `latent_dim`-d latent of a face decoder trained on
      real photos (`channels` are the decoder's widths, DCGAN-shaped).
    - 'stylegan': linear heads from the embedding to gender, age and
      `identity_axes` coordinates of a photographic StyleGAN face space
      (MobileStyleGAN, `synthesis_widths`; see `models/style_map.py`).
    """

    backend: str = "wen2019"
    channels: tuple[int, ...] = (1024, 512, 256, 128, 64)
    image_channels: int = 3
    # Standardise each input dimension with statistics of the training voices (stored as buffers).
    # Off in the paper; needed for pretrained encoders whose unit vectors share a large common
    # direction, which otherwise leaves the generator a near-constant input and it collapses.
    standardise_input: bool = False
    latent_dim: int = 100
    mapping_width: int = 256
    mapping_layers: int = 3
    synthesis_widths: tuple[int, ...] = (512, 512, 512, 512, 512, 256, 128, 64)
    identity_axes: int = 32
    identity_spread: float = 1.0  # stylegan: identity coordinates are multiplied by this before they place the face
    identity_inputs: int = 0  # stylegan: the identity head reads the first this many inputs (the speaker embedding); 0: all
    # stylegan: channels of the distilled head that draws quarter-size (256-px) faces from an earlier block
    # (0: none), and how many convs it has
    small_face_channels: int = 0
    small_face_convs: int = 1


#: The person axes a face space keeps (`training/face_space.py: PERSON_AXES`) bound the identity coordinates.
MAX_IDENTITY_AXES = 128


@dataclass(frozen=True)
class FaceEmbedderConfig:
    image_channels: int = 3
    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    embedding_dim: int = 64
    negative_slope: float = 0.2


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the networks of a checkpoint."""

    voice: VoiceEncoderConfig = field(default_factory=VoiceEncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    face: FaceEmbedderConfig = field(default_factory=FaceEmbedderConfig)
    n_identities: int = 0  # width of the identity classifier; 0 when not trained yet


#: Limits on any width a config may ask for: a damaged or hostile config.json must not
#: make us build a network of many GB before the weights' shapes are checked.
MAX_WIDTH = 4096
MAX_LAYERS = 16


def check_model_config(config: ModelConfig) -> list[str]:
    """Problems with a model config, as sentences; empty when it can be built."""
    problems = []
    if config.voice.backend not in VOICE_BACKENDS:
        problems.append(f"unknown voice encoder backend {config.voice.backend!r} (known: {', '.join(VOICE_BACKENDS)})")
    if config.generator.backend not in GENERATOR_BACKENDS:
        problems.append(f"unknown generator backend {config.generator.backend!r} (known: {', '.join(GENERATOR_BACKENDS)})")
    widths = {
        "voice.n_mels": [config.voice.n_mels], "voice.channels": config.voice.channels,
        "voice.embedding_dim": [config.voice.embedding_dim], "generator.channels": config.generator.channels,
        "generator.image_channels": [config.generator.image_channels], "generator.latent_dim": [config.generator.latent_dim],
        "generator.mapping_width": [config.generator.mapping_width], "face.channels": config.face.channels,
        "face.embedding_dim": [config.face.embedding_dim], "generator.identity_axes": [config.generator.identity_axes],
    }  # fmt: skip
    for name, values in widths.items():
        if not values or len(values) > MAX_LAYERS:
            problems.append(f"{name} must list 1 to {MAX_LAYERS} widths")
        elif not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_WIDTH for v in values):
            problems.append(f"{name} must be whole numbers from 1 to {MAX_WIDTH}, got {list(values)}")
    depth = {"wen2019": 5, "face-space": 4}.get(config.generator.backend)
    if depth and len(config.generator.channels) != depth:
        problems.append(f"the {config.generator.backend} generator takes {depth} generator.channels (64x64 faces), got {len(config.generator.channels)}")
    widths = config.generator.synthesis_widths
    if config.generator.backend == "stylegan" and not (
        2 <= len(widths) <= 8 and all(isinstance(v, int) and not isinstance(v, bool) and 4 <= v <= 512 and v % 4 == 0 for v in widths)
    ):
        problems.append(f"generator.synthesis_widths must list 2 to 8 multiples of 4 from 4 to 512 (faces up to 1024 px), got {list(widths)}")
    head = config.generator.small_face_channels
    if not (isinstance(head, int) and not isinstance(head, bool) and 0 <= head <= 512):
        problems.append(f"generator.small_face_channels must be a whole number from 0 to 512, got {head!r}")
    elif head and len(widths) < 4:
        problems.append("generator.small_face_channels needs at least 3 synthesis blocks (4 synthesis_widths)")
    convs = config.generator.small_face_convs
    if not (isinstance(convs, int) and not isinstance(convs, bool) and 1 <= convs <= 4):
        problems.append(f"generator.small_face_convs must be 1 to 4, got {convs!r}")
    if config.generator.backend == "stylegan" and not 1 <= config.generator.identity_axes <= MAX_IDENTITY_AXES:
        problems.append(f"generator.identity_axes must be 1 to {MAX_IDENTITY_AXES}")
    spread = config.generator.identity_spread
    if not isinstance(spread, (int, float)) or not 0 <= spread <= 4:
        problems.append(f"generator.identity_spread must be a number from 0 to 4, got {spread!r}")
    if not isinstance(config.generator.mapping_layers, int) or not 1 <= config.generator.mapping_layers <= MAX_LAYERS:
        problems.append(f"generator.mapping_layers must be 1 to {MAX_LAYERS}")
    if not isinstance(config.n_identities, int) or config.n_identities < 0:
        problems.append("n_identities must be a whole number >= 0")
    return problems
