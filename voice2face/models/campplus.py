"""CAM++ (Wang et al., Interspeech 2023): a speaker encoder trained on about 200k speakers.

The network of 3D-Speaker's `speech_campplus_sv_zh_en_16k-common_advanced`
(Apache-2.0), written here so its weights (converted once by
`python -m voice2face import-campplus`) load into our own module:

- a 2-D front (`FrequencyFront`): four residual blocks over (frequency, time)
  that fold 80 filterbank bins into 320 channels of 10 frequency groups;
- a TDNN layer of stride 2 (frames every 20 ms from here on);
- three densely connected blocks (12, 24, 16 layers) of context-aware masked
  TDNN layers (`MaskedTDNN`): each layer's output is gated by what the whole
  clip and its 100-frame segment hold, each block followed by a 1x1 transition
  that halves the channels;
- mean and standard deviation over time, and a 1x1 layer to 192 numbers.

The output row is the unit 192-d embedding (who speaks: cosine scoring) followed
by the 1024 statistics it was pooled from (`statistics_dim`). Those keep what
speaker training teaches the last layer to set aside: read linearly, they gave
gender right for every clip of EmoDB's held-out actors, where the embedding gave
59% for one of the women.

Frames come from `audio.front_end.kaldi_fbank` (80 bins), minus the clip's
mean. `embed_prefixes` shares passes between prefixes where that changes an
embedding by under 1%.

For a server on a CPU, `compile_for_cpu` runs the frame-level layers (nearly all
of CAM++'s work: a 10 s clip took 186 ms in PyTorch on 2 cores, 78 ms compiled, on a slow
turn of this machine, 2026-12-07) through OpenVINO: traced with the time axis left open, so one graph serves every
length, to about 1e-5 of PyTorch's numbers (in f32: `VOICE_PRECISION`); kept on disk (`models/openvino.py`)
and traced the first time by a child process (`python -m voice2face.models.campplus`),
which takes the memory tracing leaves behind with it (a cold start rested at
1,079 MiB, a warm one at 900).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.front_end import FrontEndConfig
from .config import VoiceEncoderConfig
from .openvino import cache_for, compile_cached, converted, run_compiled, trace_in_child_process
from .voice import VoiceEncoder

#: Channels of the 2-D front, of the first TDNN layer, added by each dense layer, and of its bottleneck.
FRONT_CHANNELS, TDNN_CHANNELS, GROWTH, BOTTLENECK = 32, 128, 32, 128
#: (layers, dilation) of the three dense blocks; every layer's kernel is 3.
DENSE_BLOCKS = ((12, 1), (24, 2), (16, 2))
#: Context-aware masking pools the clip in segments of this many frames (after the stride of 2).
SEGMENT = 100

#: A prefix is pooled from the pass over a longer one when it is at least this fraction of it and this
#: many frames (4 s): shorter ones move more with the longer clip's mean (1 s of a 2 s clip: cosine 0.77;
#: 4 s of 8 s: down to 0.97).
SHARED_FRACTION, SHARED_MIN_FRAMES = 0.75, 400
#: The frame-level layers run over at most this many frames at once (16 s), plus PASS_CONTEXT either side:
#: one pass over 300 s of speech left a server holding 660 MB more (OpenVINO keeps what its largest pass
#: needed: 2,000 frames, 70 MB; 3,400, 110 MB). PASS_CONTEXT covers a frame's reach through the
#: convolutions (10 frames in the front, 2 in the strided TDNN, 2 x 92 in the dense blocks) and is one
#: segment after the stride, so pieces keep the clip's segments. What differs: the masks read the piece's
#: mean, not the clip's (and segment means reach a little past the context). On 60 s and 300 s of speech
#: the embedding's cosine to one pass was 0.99996 or more.
MAX_PASS_FRAMES, PASS_CONTEXT = 1600, 2 * SEGMENT

#: CAM++'s input: 16 kHz, 80-bin Kaldi filterbank (25 ms Povey window, 10 ms hop, 20 Hz-8 kHz), no CMVN
#: (the encoder subtracts the clip's mean itself). The VAD settings are the pipeline's own.
CAMPPLUS_FRONT_END = FrontEndConfig(
    features="kaldi-fbank", n_mels=80, n_fft=512, f_min=20.0, f_max=8000.0, log_compress=True, normalise=False
)
CAMPPLUS_CONFIG = VoiceEncoderConfig(backend="campplus", n_mels=80, channels=(FRONT_CHANNELS,), embedding_dim=192, statistics_dim=1024)


def segment_matrices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For frames `x` (B, C, T): `average` (T, S), whose product with them is the mean of each SEGMENT-frame segment
    (the last one may be shorter), and `spread` (S, T), which gives each frame its segment's value. Built once a pass,
    from T alone: each masked layer then costs two small matrix products, where a padding, reshape and repeat in
    every layer made a graph of 4,738 operations (1,640 now) and every CAM++ pass 1.3-1.5x slower through OpenVINO."""
    frames = torch.arange(x.shape[-1], device=x.device)
    segments = torch.arange((x.shape[-1] + SEGMENT - 1) // SEGMENT, device=x.device)
    member = (frames[:, None] // SEGMENT == segments[None, :]).to(x.dtype)
    return member / member.sum(0), member.T


def centred(features: torch.Tensor) -> torch.Tensor:
    """Filterbank frames (n_mels, T) minus their mean over time, as CAM++ was trained to take them."""
    return features - features.mean(-1, keepdim=True)


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU())


class ResBlock2d(nn.Module):
    """Two 3x3 convs with batch norm and a shortcut; `stride` downsamples frequency only."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class FrequencyFront(nn.Module):
    """(B, 80, T) filterbank frames -> (B, 320, T): 2-D convolutions over frequency and time, then
    the 10 remaining frequency rows of each of the 32 channels stacked as channels."""

    def __init__(self, n_bins: int):
        super().__init__()
        c = FRONT_CHANNELS
        self.conv1 = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.layer1 = nn.Sequential(ResBlock2d(c, c, 2), ResBlock2d(c, c, 1))
        self.layer2 = nn.Sequential(ResBlock2d(c, c, 2), ResBlock2d(c, c, 1))
        self.conv2 = nn.Conv2d(c, c, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.out_channels = c * ((n_bins + 7) // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x[:, None])))
        x = F.relu(self.bn2(self.conv2(self.layer2(self.layer1(x)))))
        return x.flatten(1, 2)


class MaskedTDNN(nn.Module):
    """One dense layer: batch norm, ReLU, a 1x1 bottleneck, batch norm, ReLU, then a dilated kernel-3
    conv whose output is gated per channel by a sigmoid of the clip's mean plus its segment's mean
    (context-aware masking): what the layer passes on depends on what the whole utterance holds. The gate
    is the same for every frame of a segment, so it is computed once a segment and spread (`segment_matrices`)."""

    def __init__(self, cin: int, dilation: int):
        super().__init__()
        self.pre = bn_relu(cin)
        self.bottleneck = nn.Conv1d(cin, BOTTLENECK, 1, bias=False)
        self.mid = bn_relu(BOTTLENECK)
        self.local = nn.Conv1d(BOTTLENECK, GROWTH, 3, padding=dilation, dilation=dilation, bias=False)
        self.context1 = nn.Conv1d(BOTTLENECK, BOTTLENECK // 2, 1)
        self.context2 = nn.Conv1d(BOTTLENECK // 2, GROWTH, 1)

    def forward(self, x: torch.Tensor, segments: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        average, spread = segments
        x = self.mid(self.bottleneck(self.pre(x)))
        context = x.mean(-1, keepdim=True) + x @ average
        gate = torch.sigmoid(self.context2(F.relu(self.context1(context))))
        return self.local(x) * (gate @ spread)


class DenseBlock(nn.Module):
    """Layers that each read everything before them and add GROWTH channels; then a transition
    (batch norm, ReLU, 1x1 conv) to half the channels."""

    def __init__(self, cin: int, n_layers: int, dilation: int):
        super().__init__()
        self.layers = nn.ModuleList(MaskedTDNN(cin + i * GROWTH, dilation) for i in range(n_layers))
        total = cin + n_layers * GROWTH
        self.transit = nn.Sequential(bn_relu(total), nn.Conv1d(total, total // 2, 1, bias=False))
        self.out_channels = total // 2

    def forward(self, x: torch.Tensor, segments: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x, segments)], dim=1)
        return self.transit(x)


class CAMPPlusEncoder(VoiceEncoder):
    """CAM++: Kaldi filterbank frames in, a unit 192-d speaker embedding out (cosine scoring)."""

    def __init__(self, config: VoiceEncoderConfig = CAMPPLUS_CONFIG, front_end: FrontEndConfig = CAMPPLUS_FRONT_END):
        super().__init__()
        self.config, self.front_end, self.embedding_dim = config, front_end, config.embedding_dim
        self.front = FrequencyFront(config.n_mels)
        self.tdnn = nn.Sequential(nn.Conv1d(self.front.out_channels, TDNN_CHANNELS, 5, stride=2, padding=2, bias=False),
                                  bn_relu(TDNN_CHANNELS))  # fmt: skip
        blocks, channels = [], TDNN_CHANNELS
        for n_layers, dilation in DENSE_BLOCKS:
            blocks.append(DenseBlock(channels, n_layers, dilation))
            channels = blocks[-1].out_channels
        self.blocks = nn.Sequential(*blocks, bn_relu(channels))
        self.embed = nn.Conv1d(2 * channels, config.embedding_dim, 1, bias=False)
        self.embed_norm = nn.BatchNorm1d(config.embedding_dim, affine=False)
        self.compiled_frames = None  # an OpenVINO graph of `frame_level_torch`, once `compile_for_cpu` has run

    def frame_level(self, features: torch.Tensor) -> torch.Tensor:
        """(1, 80, T) filterbank frames (the clip's mean taken out) -> (1, 512, ceil(T / 2)) frame features,
        in pieces of at most MAX_PASS_FRAMES (each run with PASS_CONTEXT frames of its neighbours) so that
        memory is bounded however long the clip."""
        n = features.shape[-1]
        if n <= MAX_PASS_FRAMES:
            return self.frame_level_pass(features)
        pieces = -(-n // MAX_PASS_FRAMES)
        core = -(-n // (pieces * PASS_CONTEXT)) * PASS_CONTEXT  # whole segments, so pieces start on a segment
        kept = []
        for start in range(0, n, core):
            end, lo = min(start + core, n), max(start - PASS_CONTEXT, 0)
            frames = self.frame_level_pass(features[..., lo : min(end + PASS_CONTEXT, n)])
            kept.append(frames[..., (start - lo) // 2 : (start - lo) // 2 + (end + 1) // 2 - start // 2])
        return torch.cat(kept, dim=-1)

    def frame_level_pass(self, features: torch.Tensor) -> torch.Tensor:
        """One pass of the frame-level layers: through OpenVINO once `compile_for_cpu` has run, else PyTorch."""
        if self.compiled_frames is not None and not torch.is_grad_enabled() and features.device.type == "cpu":
            return self.compiled_frames(features)
        return self.frame_level_torch(features)

    def frame_level_torch(self, features: torch.Tensor) -> torch.Tensor:
        x = self.tdnn(self.front(features))
        segments = segment_matrices(x)
        *dense, last = self.blocks
        for block in dense:
            x = block(x, segments)
        return last(x)

    def compile_for_cpu(self, cache_dir: str | Path | None = None) -> bool:
        """Run the frame-level layers through OpenVINO from now on (`CompiledFrameLevel`), its graph kept in
        `cache_dir` if given. For a long-running server on a CPU."""
        self.compiled_frames = CompiledFrameLevel(self, cache_dir)
        return True

    @staticmethod
    def statistics(frames: torch.Tensor) -> torch.Tensor:
        """(1, C, t) frame features -> (1, 2C): their mean and standard deviation over time."""
        return torch.cat([frames.mean(-1), frames.std(-1, unbiased=frames.shape[-1] > 1)], dim=1)

    def embedding(self, stats: torch.Tensor) -> torch.Tensor:
        """(1, 2C) statistics -> (1, 192): the embedding, unnormalised, as the reference model gives it."""
        return self.embed_norm(self.embed(stats[..., None]))[..., 0]

    def pool(self, frames: torch.Tensor) -> torch.Tensor:
        """(1, C, t) frame features -> (1, 192) embedding, unnormalised."""
        return self.embedding(self.statistics(frames))

    def output_row(self, frames: torch.Tensor) -> torch.Tensor:
        """(1, C, t) frame features -> (output_dim,): the unit embedding, then the statistics if the config has them."""
        stats = self.statistics(frames)
        embedding = F.normalize(self.embedding(stats), dim=1)[0]
        return torch.cat([embedding, stats[0]]) if self.config.statistics_dim else embedding

    def raw_embedding(self, features: torch.Tensor) -> torch.Tensor:
        """(n_mels, T) filterbank frames of one clip -> (192,) embedding as the reference model gives it."""
        return self.pool(self.frame_level(centred(features)[None]))[0]

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # One clip at a time: every layer's masks read the clip's mean, which padding would change.
        return torch.stack([self.output_row(self.frame_level(centred(f[:, :n])[None])) for f, n in zip(features, lengths.tolist())])

    def prefix_passes(self, lengths: list[int]) -> list[list[int]]:
        """One pass over each group's longest prefix; a shorter prefix joins it when it is at least
        SHARED_FRACTION of it and 4 s or more (`embed_prefixes`)."""
        passes, left = [], sorted(set(lengths), reverse=True)
        while left:
            n = left[0]
            passes.append([m for m in left if m == n or m >= max(SHARED_FRACTION * n, SHARED_MIN_FRAMES)])
            left = [m for m in left if m not in passes[-1]]
        return passes

    def embed_prefixes(self, features: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """The first n frames of one clip for each n in `lengths`, sharing passes (`prefix_passes`): the
        frame-level layers run over a prefix once, and every shorter prefix of at least SHARED_FRACTION of it
        pools its own frames of that pass, if it is 4 s or more. Their masks then read the longer prefix's mean
        rather than their own, which changes an embedding by under 1% there (tests/test_campplus.py); a 1 s
        prefix pooled from a 10 s pass would move by 6%. The default lengths (1, 2, 4, 8 s and a 10 s clip) cost
        1.7 passes of the clip rather than 2.5; on any clip, the passes past the whole clip's add at most
        the 15 s of the four shorter lengths, however long it is."""
        rows: dict[int, torch.Tensor] = {}
        for group in self.prefix_passes(lengths):
            frames = self.frame_level(centred(features[:, : group[0]])[None])
            rows.update({m: self.output_row(frames[..., : (m + 1) // 2]) for m in group})
        return torch.stack([rows[n] for n in lengths])


# --------------------------------------------------------------------------- compiled for a CPU

GRAPH_FILE = "campplus_frames.xml"
#: How the graph is built, part of its cache key: a graph kept by a version that built it otherwise is not read back.
GRAPH_LAYOUT = "frames; masks gated per segment"


#: The compiled frame-level layers compute in f32. bf16, where the CPU has it natively, took a 10 s pass from
#: 67-100 ms to 41-57 ms on 2 cores and kept every length's embedding within cosine 0.996 of PyTorch's, but
#: the faces then moved too far: on 134 faces of 44 held-out labelled voices, 10% fell under 35 dB PSNR
#: against the library's (worst 26 dB: a borderline voice's man became more feminine), though the judges
#: read the same gender for all and an age within 3 years for 98% (`benchmarks/bench_served_faces.py
#: --voice-precision bf16`). INT8 (NNCF's post-training quantisation, calibrated on 30 EmoDB clips) was
#: no faster than bf16, and its embeddings fell to cosine 0.96.
VOICE_PRECISION = "f32"


class FrameLevel(nn.Module):
    """The encoder's frame-level layers as a module of their own, for tracing."""

    def __init__(self, encoder: CAMPPlusEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder.frame_level_torch(features)


def frame_level_graph(encoder: CAMPPlusEncoder):
    """The frame-level layers as an OpenVINO model whose time axis is left open."""
    import openvino as ov

    n_mels = encoder.config.n_mels
    # frozen: converted in 2.9-3.1 s against 3.9-4.3, the same numbers (to 2e-5) and speed. A first start waits for
    # it. The face graphs are not: they add their noise maps, which are inputs, in place, and a frozen trace of
    # that did not compile
    return converted(FrameLevel(encoder), torch.zeros(1, n_mels, 400), [ov.PartialShape([1, n_mels, -1])], freeze=True)


def save_frame_level_graph(source: Path, graph: Path) -> None:
    """Trace CAM++ as saved in `source` (its config and weights) and save its frame-level graph as `graph`."""
    import openvino as ov

    saved = torch.load(source, weights_only=True)
    encoder = CAMPPlusEncoder(VoiceEncoderConfig(**saved["config"]))
    encoder.load_state_dict(saved["state"])
    ov.save_model(frame_level_graph(encoder.eval()), str(graph), compress_to_fp16=False)


def traced_frame_level(encoder: CAMPPlusEncoder, graph: Path):
    """The frame-level graph a child process wrote to `graph` (a folder of its own, not the cache), or, where it wrote
    none, traced here."""
    import openvino as ov

    return ov.Core().read_model(str(graph)) if graph.is_file() else frame_level_graph(encoder)


def trace_frame_level_in_child(encoder: CAMPPlusEncoder, graph: Path) -> None:
    """Write the frame-level graph to `graph` from a child process (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="voice2face-campplus-") as folder:
        source = Path(folder) / "campplus.pt"
        torch.save({"config": dataclasses.asdict(encoder.config), "state": encoder.state_dict()}, source)
        trace_in_child_process("CAM++", __name__, str(source), str(graph))


class CompiledFrameLevel:
    """(1, 80, T) centred filterbank frames -> (1, 512, ceil(T / 2)) through OpenVINO, any T. Traced by a child process,
    into the cache or, without one, a folder of its own for the while."""

    def __init__(self, encoder: CAMPPlusEncoder, cache_dir: str | Path | None = None):
        cache = cache_for(encoder, cache_dir, GRAPH_LAYOUT)
        with tempfile.TemporaryDirectory(prefix="voice2face-campplus-graph-", ignore_cleanup_errors=True) as scratch:
            graph = (cache or Path(scratch)) / GRAPH_FILE
            if not graph.is_file():
                trace_frame_level_in_child(encoder, graph)
            # with a cache, compile_cached reads the child's graph there itself (and, if it is damaged, builds anew)
            written = Path(scratch) / GRAPH_FILE
            self.compiled = compile_cached(cache, GRAPH_FILE, lambda: traced_frame_level(encoder, written), VOICE_PRECISION)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return run_compiled(self.compiled, [features.detach().float().cpu().contiguous().numpy()])


if __name__ == "__main__":  # the child process of `trace_frame_level_in_child`
    save_frame_level_graph(Path(sys.argv[1]), Path(sys.argv[2]))
