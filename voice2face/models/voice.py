"""Voice encoders: log-mel frames in, one unit vector per clip out.

- `VoiceEmbedder`: the paper's five strided 1-D convs, average pooled.
- `GE2EEncoder`: a pretrained GE2E speaker encoder (the weights that the
  `resemblyzer` wheel ships, copied into `checkpoints/ge2e`).

An encoder owns its input: callers pass raw features (`log_mel`) and the
encoder normalises them as its front end says, so no caller can forget to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio.front_end import FrontEndConfig, cmvn, pad_features
from .config import VoiceEncoderConfig

T = TypeVar("T", torch.Tensor, np.ndarray)

# --------------------------------------------------------------------------- voice


def speaker_part(vectors: T, embedding_dim: int | None) -> T:
    """The unit speaker embeddings at the front of voice encoder outputs (..., output_dim), tensors or
    arrays: what tells who speaks, and what cosine similarities between voices are measured on (None: all)."""
    return vectors[..., :embedding_dim]


def average_voices(vectors: torch.Tensor, embedding_dim: int) -> torch.Tensor:
    """One output row for several of one voice (windows, clips): the mean, its speaker part made unit again."""
    mean = vectors.mean(0)
    return torch.cat([F.normalize(mean[:embedding_dim], dim=0), mean[embedding_dim:]])


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, 1, T) float mask, 1 where a time step is inside its sequence."""
    steps = torch.arange(max_len, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).unsqueeze(1).float()


class VoiceEncoder(nn.Module):
    """Interface of a voice encoder: raw frames in, one unit vector per clip out.

    `front_end` says which features the encoder reads (the pipeline computes
    them) and whether each clip is normalised per band first, which `forward`
    does; `embedding_dim` is the width of the output.
    """

    front_end: FrontEndConfig
    embedding_dim: int

    @property
    def output_dim(self) -> int:
        """Width of each output row: the unit speaker embedding, then any statistics (`VoiceEncoderConfig`)."""
        return self.config.output_dim

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """features (B, n_mels, T) from `log_mel`, zero-padded past `lengths` -> (B, output_dim): the speaker
        embedding, L2-normalised, then any statistics (see `speaker_part`)."""
        if lengths is None:
            lengths = torch.full((features.shape[0],), features.shape[-1], device=features.device)
        if self.front_end.normalise:
            features = cmvn(features, lengths)
        return self.encode(features, lengths)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What `forward` runs on features already normalised as the front end says."""
        raise NotImplementedError

    def compile_for_cpu(self, cache_dir: str | Path | None = None) -> bool:
        """Hear voices through a graph compiled for the CPU from now on, kept in `cache_dir`; False, and
        nothing changed, for an encoder that has none (only CAM++ has)."""
        return False

    def prefix_passes(self, lengths: list[int]) -> list[list[int]]:
        """The distinct `lengths` in the groups `embed_prefixes` hears together, longest first, each group's
        longest first: a pipeline that draws as it hears (`Voice2Face.stream`) embeds a group, draws its
        faces, then hears the next. Here all in one group; CAM++ hears a pass per group."""
        return [sorted(set(lengths), reverse=True)]

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

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = features
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

    def embed_runs(self, runs: list[torch.Tensor], reads: list[tuple[int, int]]) -> torch.Tensor:
        """Partial embeddings read off LSTM runs: each run (t, n_mels) goes through the LSTM once, in
        one zero-padded batch, and a read (run, step) embeds that run's first step + 1 frames. The
        LSTM runs forwards only, so the padding after a step cannot change it."""
        top, _ = self.lstm(nn.utils.rnn.pad_sequence(runs, batch_first=True))  # (B, T, hidden): the top layer at every step
        rows, steps = zip(*reads)
        return F.normalize(F.relu(self.linear(top[list(rows), list(steps)])), dim=1)

    def average(self, per_partial: torch.Tensor, owner: list[int], n_clips: int) -> torch.Tensor:
        """Each clip's embedding: the normalised mean of its partials'."""
        owner_index = torch.tensor(owner, device=per_partial.device)
        summed = per_partial.new_zeros(n_clips, self.embedding_dim).index_add_(0, owner_index, per_partial)
        return F.normalize(summed, dim=1)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames = features.transpose(1, 2)  # (B, T, n_mels)
        spans = [(i, s, e) for i, n in enumerate(lengths.tolist()) for s, e in self.partial_spans(n)]
        per_partial = self.embed_runs([frames[i, s:e] for i, s, e in spans], [(k, e - s - 1) for k, (_, s, e) in enumerate(spans)])
        return self.average(per_partial, [i for i, _, _ in spans], len(lengths))

    def embed_prefixes(self, features: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Prefixes of one clip share most partials (the first 8 s and the whole clip start alike):
        the LSTM runs once per distinct partial start, and a shorter partial with the same start
        (the 1 s prefix's) is read off the longer one's run at its own last step, since the LSTM
        runs forwards only."""
        if self.front_end.normalise:  # each prefix is normalised over itself: no shared partials
            return super().embed_prefixes(features, lengths)
        frames = features.T  # (T, n_mels)
        per_clip = [self.partial_spans(n) for n in lengths]
        spans = [span for clip in per_clip for span in clip]
        end_of = {}  # partial start -> the furthest end any partial from there reaches
        for s, e in spans:
            end_of[s] = max(end_of.get(s, e), e)
        starts = sorted(end_of)
        run_of = {s: k for k, s in enumerate(starts)}
        per_partial = self.embed_runs([frames[s : end_of[s]] for s in starts], [(run_of[s], e - s - 1) for s, e in spans])
        owner = [i for i, clip in enumerate(per_clip) for _ in clip]
        return self.average(per_partial, owner, len(lengths))


#: The front end and widths of `GE2EEncoder` with resemblyzer's weights: 16 kHz, 25 ms / 10 ms,
#: 40 mel bands over 0-8 kHz, power (no log), speech gain-normalised to -30 dBFS.
GE2E_FRONT_END = FrontEndConfig(
    n_mels=40, n_fft=400, f_min=0.0, f_max=8000.0, log_compress=False, normalise=False, target_dbfs=-30.0
)
GE2E_CONFIG = VoiceEncoderConfig(backend="ge2e", n_mels=40, channels=(256, 256, 256), embedding_dim=256)


class SpeakerClassifier(nn.Module):
    """A voice encoder and a scaled linear speaker head: speaker-recognition pre-training (cross-entropy)."""

    def __init__(self, encoder: VoiceEncoder, n_speakers: int, scale: float = 16.0):
        super().__init__()
        self.encoder, self.head, self.scale = encoder, nn.Linear(encoder.embedding_dim, n_speakers), scale

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(features, lengths) * self.scale)
