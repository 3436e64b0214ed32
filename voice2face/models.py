"""The networks of Wen, Singh & Raj, "Reconstructing faces from voices" (NeurIPS 2019).

voice --VoiceEmbedder--> 64-d unit vector --Generator--> 64x64 RGB face
face  --FaceEmbedder--> 64-d --Discriminator (real/fake) / IdentityClassifier (who)

Every width is a config field with the paper's value as default. Voice encoders
are pluggable: anything that subclasses `VoiceEncoder` and is known to
`build_voice_encoder` can feed the generator, whose input width follows the
encoder's `embedding_dim`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .audio import FrontEndConfig, pad_features


# --------------------------------------------------------------------------- configs


@dataclass
class VoiceEncoderConfig:
    """Which voice encoder, and its widths. `backend` picks the class."""

    backend: str = "wen2019"
    n_mels: int = 64
    channels: tuple[int, ...] = (256, 384, 576, 864)
    embedding_dim: int = 64


@dataclass
class GeneratorConfig:
    embedding_dim: int = 64
    channels: tuple[int, ...] = (1024, 512, 256, 128, 64)
    image_channels: int = 3
    # Standardise each input dimension with statistics of the training voices (stored as buffers).
    # Off in the paper; needed for pretrained encoders whose unit vectors share a large common
    # direction, which otherwise leaves the generator a near-constant input and it collapses.
    standardise_input: bool = False


@dataclass
class FaceEmbedderConfig:
    image_channels: int = 3
    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    embedding_dim: int = 64
    negative_slope: float = 0.2


@dataclass
class ModelConfig:
    """Everything needed to rebuild the networks of a checkpoint."""

    voice: VoiceEncoderConfig = field(default_factory=VoiceEncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    face: FaceEmbedderConfig = field(default_factory=FaceEmbedderConfig)
    n_identities: int = 0  # width of the identity classifier; 0 when not trained yet

    def __post_init__(self) -> None:
        if self.generator.embedding_dim != self.voice.embedding_dim:
            raise ValueError(
                f"The generator takes {self.generator.embedding_dim}-d input but the voice encoder "
                f"gives {self.voice.embedding_dim}-d embeddings."
            )


# --------------------------------------------------------------------------- voice


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, 1, T) float mask, 1 where a time step is inside its sequence."""
    steps = torch.arange(max_len, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).unsqueeze(1).float()


class VoiceEncoder(nn.Module):
    """Interface of a voice encoder: frames in, one unit vector per clip out.

    `front_end` says which features the encoder reads (the pipeline computes
    them), `embedding_dim` the width of the output.
    """

    front_end: FrontEndConfig
    embedding_dim: int

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """features (B, n_mels, T), zero-padded past `lengths` -> (B, embedding_dim), L2-normalised."""
        raise NotImplementedError

    def embed_prefixes(self, features: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """The first n frames of one clip's features (n_mels, T), for each n in `lengths`.

        As a zero-padded batch here; an encoder whose prefixes share work can do better.
        """
        batch, n_frames = pad_features([features[:, :n] for n in lengths])
        return self(batch, n_frames.to(features.device))


class VoiceEmbedder(VoiceEncoder):
    """The paper's voice embedder: five strided 1-D convs, average pooled, L2-normalised.

    Padded batches give the same embedding as one clip at a time: padded steps
    are zeroed after every layer and left out of the average.
    """

    def __init__(self, config: VoiceEncoderConfig = VoiceEncoderConfig(), front_end: FrontEndConfig = FrontEndConfig()):
        super().__init__()
        self.config, self.front_end, self.embedding_dim = config, front_end, config.embedding_dim
        widths = (config.n_mels, *config.channels)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(cin, cout, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm1d(cout, affine=True),
                nn.ReLU(inplace=True),
            )
            for cin, cout in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Conv1d(widths[-1], config.embedding_dim, 3, stride=2, padding=1, bias=True)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = features
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[-1], device=x.device)
        for layer in (*self.blocks, self.head):
            x = x * valid_mask(lengths, x.shape[-1])
            x = layer(x)
            lengths = (lengths + 1) // 2  # k3 s2 p1 halves the length, rounding up
        mask = valid_mask(lengths, x.shape[-1])
        pooled = (x * mask).sum(dim=-1) / mask.sum(dim=-1)
        return F.normalize(pooled, dim=1)


class GE2EEncoder(VoiceEncoder):
    """A GE2E speaker encoder (Wan et al. 2018): 3-layer LSTM over 40-band mel power, 256-d.

    Shaped to take the weights that the `resemblyzer` package ships
    (`pretrained_ge2e_state`). A clip is cut into 1.6 s partials with 50%
    overlap; each partial's last LSTM state goes through a linear layer and
    ReLU and is L2-normalised; the clip's embedding is the normalised mean of
    its partials. The partials of every clip in a batch run as one LSTM batch.
    """

    PARTIAL_FRAMES = 160
    PARTIAL_STEP = 80

    def __init__(self, config: VoiceEncoderConfig, front_end: FrontEndConfig):
        super().__init__()
        self.config, self.front_end, self.embedding_dim = config, front_end, config.embedding_dim
        hidden = config.channels[0]
        self.lstm = nn.LSTM(config.n_mels, hidden, num_layers=len(config.channels), batch_first=True)
        self.linear = nn.Linear(hidden, config.embedding_dim)

    def partial_spans(self, n_frames: int) -> list[tuple[int, int]]:
        """(start, end) of the 1.6 s partials, 50% overlap; one shorter partial for a clip under 1.6 s."""
        last_start = max(n_frames - self.PARTIAL_FRAMES, 0)
        return [(s, min(s + self.PARTIAL_FRAMES, n_frames)) for s in range(0, last_start + 1, self.PARTIAL_STEP)]

    def embed_partials(self, chunks: list[torch.Tensor]) -> torch.Tensor:
        """Chunks (t, n_mels) -> (len(chunks), embedding_dim), one LSTM batch per chunk length (no padding)."""
        out = chunks[0].new_empty(len(chunks), self.embedding_dim)
        by_length: dict[int, list[int]] = {}
        for k, chunk in enumerate(chunks):
            by_length.setdefault(chunk.shape[0], []).append(k)
        for rows in by_length.values():
            _, (hidden, _) = self.lstm(torch.stack([chunks[k] for k in rows]))
            out[rows] = F.normalize(F.relu(self.linear(hidden[-1])), dim=1)
        return out

    def average(self, per_partial: torch.Tensor, owner: list[int], n_clips: int) -> torch.Tensor:
        """Each clip's embedding: the normalised mean of its partials'."""
        owner_index = torch.tensor(owner, device=per_partial.device)
        summed = per_partial.new_zeros(n_clips, self.embedding_dim).index_add_(0, owner_index, per_partial)
        return F.normalize(summed, dim=1)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((features.shape[0],), features.shape[-1])
        frames = features.transpose(1, 2)  # (B, T, n_mels)
        spans = [(i, s, e) for i, n in enumerate(lengths.tolist()) for s, e in self.partial_spans(n)]
        per_partial = self.embed_partials([frames[i, s:e] for i, s, e in spans])
        return self.average(per_partial, [i for i, _, _ in spans], len(lengths))

    def embed_prefixes(self, features: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Prefixes of one clip share most partials (the first 8 s and the whole clip start alike):
        each distinct partial runs through the LSTM once."""
        frames = features.T  # (T, n_mels)
        spans = [self.partial_spans(n) for n in lengths]
        unique = sorted({span for clip in spans for span in clip})
        row = {span: k for k, span in enumerate(unique)}
        per_unique = self.embed_partials([frames[s:e] for s, e in unique])
        rows = [row[span] for clip in spans for span in clip]
        owner = [i for i, clip in enumerate(spans) for _ in clip]
        return self.average(per_unique[rows], owner, len(lengths))


#: The front end and widths of `GE2EEncoder` with resemblyzer's weights: 16 kHz, 25 ms / 10 ms,
#: 40 mel bands over 0-8 kHz, power (no log), speech gain-normalised to -30 dBFS.
GE2E_FRONT_END = FrontEndConfig(
    n_mels=40, n_fft=400, f_min=0.0, f_max=8000.0, log_compress=False, normalise=False, target_dbfs=-30.0
)
GE2E_CONFIG = VoiceEncoderConfig(backend="ge2e", n_mels=40, channels=(256, 256, 256), embedding_dim=256)


def pretrained_ge2e_state() -> dict[str, torch.Tensor]:
    """The GE2E weights inside the installed `resemblyzer` wheel (trained on LibriSpeech and VoxCeleb).

    Read as a file from the package, without importing it; nothing is downloaded.
    """
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("The 'resemblyzer' package is not installed: pip install -r requirements.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    return {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}


def build_voice_encoder(config: VoiceEncoderConfig, front_end: FrontEndConfig) -> VoiceEncoder:
    """The voice encoder a checkpoint's config names: 'wen2019' (the paper's) or 'ge2e'."""
    if config.backend == "wen2019":
        return VoiceEmbedder(config, front_end)
    if config.backend == "ge2e":
        return GE2EEncoder(config, front_end)
    raise ValueError(f"Unknown voice encoder backend {config.backend!r}; known: 'wen2019', 'ge2e'.")


# --------------------------------------------------------------------------- faces


class Generator(nn.Module):
    """Embedding -> 64x64 RGB in [-1, 1]: six transposed convs (the last 1x1), ReLU between.

    `standardise_input` is off by default, as in the paper.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        c = config.channels
        layers: list[nn.Module] = [nn.ConvTranspose2d(config.embedding_dim, c[0], 4, 1, 0), nn.ReLU(inplace=True)]
        for cin, cout in zip(c[:-1], c[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(c[-1], config.image_channels, 1, 1, 0), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if config.standardise_input:
            self.register_buffer("input_mean", torch.zeros(config.embedding_dim))
            self.register_buffer("input_std", torch.ones(config.embedding_dim))

    @torch.no_grad()
    def fit_input_statistics(self, embeddings: torch.Tensor) -> None:
        """Set the per-dimension mean and spread of the voices the generator will see."""
        self.input_mean.copy_(embeddings.mean(0))
        self.input_std.copy_(embeddings.std(0).clamp_min(1e-4))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        if self.config.standardise_input:
            embedding = (embedding - self.input_mean) / self.input_std
        return self.net(embedding[:, :, None, None])


class FaceEmbedder(nn.Module):
    """64x64 face -> 64-d vector, shared by the discriminator and the identity classifier."""

    def __init__(self, config: FaceEmbedderConfig = FaceEmbedderConfig()):
        super().__init__()
        self.config = config
        c, slope = config.channels, config.negative_slope
        layers: list[nn.Module] = [nn.Conv2d(config.image_channels, c[0], 1, 1, 0), nn.LeakyReLU(slope, inplace=True)]
        for cin, cout in zip(c[:-1], c[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(slope, inplace=True)]
        layers += [nn.Conv2d(c[-1], config.embedding_dim, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces).flatten(1)


class Discriminator(nn.Module):
    """Face embedding -> one real/fake logit."""

    def __init__(self, embedding_dim: int = 64):
        super().__init__()
        self.linear = nn.Linear(embedding_dim, 1)

    def forward(self, face_embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(F.relu(face_embedding)).squeeze(1)


class IdentityClassifier(nn.Module):
    """Face embedding -> logits over the training identities."""

    def __init__(self, embedding_dim: int, n_identities: int):
        super().__init__()
        self.linear = nn.Linear(embedding_dim, n_identities)

    def forward(self, face_embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(F.relu(face_embedding))
