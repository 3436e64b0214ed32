"""Audio front end: keep only the speech of a decoded clip and turn it into log-mel frames.

After Wen et al. 2019: 16 kHz mono, silence removed by WebRTC VAD (mode 2,
20 ms frames), 64-band log-mel spectrograms (25 ms window, 10 ms hop,
20-7200 Hz) normalised per band over the utterance.

Decoding lives in `decode`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import librosa
import numpy as np
import torch
import webrtcvad

from ..errors import AudioError
from ..lengths import seconds_text
from ..limits import MAX_AUDIO_SECONDS
from .decode import Audio, AudioSource
from .load import load_audio
from .speech_check import SAMPLE_RATE as SPEECH_CHECK_RATE
from .speech_check import require_speech


@dataclass(frozen=True)
class FrontEndConfig:
    """How a voice encoder wants its input frames; stored in every checkpoint."""

    features: str = "log-mel"  # or "kaldi-fbank" (Kaldi's filterbank, as CAM++ was trained on)
    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 1024
    win_ms: float = 25.0
    hop_ms: float = 10.0
    f_min: float = 20.0
    f_max: float = 7200.0
    log_compress: bool = True
    normalise: bool = True  # per-band mean/variance over the utterance (CMVN)
    target_dbfs: float | None = None  # scale the speech to this RMS level first (None: keep the gain)
    vad_mode: int = 2
    vad_frame_ms: int = 20
    vad_padding_frames: int = 2  # keep this many VAD frames around speech so word edges survive

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    def frames_to_seconds(self, frames: int) -> float:
        return frames * self.hop_ms / 1000


def check_front_end(config: FrontEndConfig) -> list[str]:
    """Problems with a front-end config (from a checkpoint), as sentences; empty when usable."""
    problems = []
    if config.features not in FEATURE_KINDS:
        problems.append(f"front_end.features must be one of {', '.join(FEATURE_KINDS)}")
    if config.sample_rate not in webrtcvad_rates():
        problems.append(f"front_end.sample_rate must be one of {', '.join(map(str, webrtcvad_rates()))} Hz")
    if not 5 <= config.win_ms <= 100 or not 1 <= config.hop_ms <= config.win_ms:
        problems.append("front_end.win_ms must be 5 to 100 ms, and hop_ms 1 ms to win_ms")
    if not 0 < config.n_mels <= 256:
        problems.append("front_end.n_mels must be 1 to 256")
    if config.sample_rate in webrtcvad_rates() and not config.win_length <= config.n_fft <= 8192:
        problems.append("front_end.n_fft must be at least the window and at most 8192")
    if not 0 <= config.f_min < config.f_max <= config.sample_rate / 2:
        problems.append("front_end.f_min and f_max must satisfy 0 <= f_min < f_max <= sample_rate / 2")
    if config.vad_mode not in (0, 1, 2, 3) or config.vad_frame_ms not in (10, 20, 30) or not 0 <= config.vad_padding_frames <= 50:
        problems.append("front_end.vad_mode must be 0-3, vad_frame_ms 10, 20 or 30, vad_padding_frames 0-50")
    if config.target_dbfs is not None and not -80 <= config.target_dbfs <= 0:
        problems.append("front_end.target_dbfs must be between -80 and 0 dBFS")
    return problems


def webrtcvad_rates() -> tuple[int, ...]:
    """The sample rates the WebRTC VAD accepts, so the only ones a front end can use."""
    return (8000, 16000, 32000, 48000)


# --------------------------------------------------------------------------- voice activity

#: Below this peak level (-60 dBFS) a clip counts as silent.
SILENCE_PEAK = 1e-3


def speech_frames(samples: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """One bool per `vad_frame_ms` frame of 16 kHz `samples`: does WebRTC VAD hear speech?

    Each speech frame also keeps `vad_padding_frames` neighbours on each side,
    so the soft edges of words are not clipped.
    """
    frame = config.sample_rate * config.vad_frame_ms // 1000
    n = len(samples) // frame
    if n == 0:
        return np.zeros(0, dtype=bool)
    raw = (np.clip(samples[: n * frame], -1, 1) * 32767).astype(np.int16).tobytes()
    vad = webrtcvad.Vad(config.vad_mode)
    step = frame * 2  # bytes per frame
    voiced = np.fromiter(
        (vad.is_speech(raw[i * step : (i + 1) * step], config.sample_rate) for i in range(n)), dtype=bool, count=n
    )
    pad = config.vad_padding_frames
    if pad:
        voiced = np.convolve(voiced, np.ones(2 * pad + 1), mode="full")[pad : pad + n] > 0
    return voiced


def remove_silence(samples: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """The speech in `samples` (16 kHz), silent stretches cut out; raises if there is none."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak < SILENCE_PEAK:
        raise AudioError(
            "The clip is silent. If it was recorded from a microphone, check that the microphone was on."
        )
    voiced = speech_frames(samples, config)
    frame = config.sample_rate * config.vad_frame_ms // 1000
    if not voiced.any():
        raise AudioError(
            f"No speech was found in the {seconds_text(len(samples) / config.sample_rate)} of audio. "
            "Use a clip of someone speaking, close to the microphone."
        )
    speech = samples[: len(voiced) * frame].reshape(-1, frame)[voiced].reshape(-1)
    if len(speech) < config.win_length:
        raise AudioError(
            f"Only {1000 * len(speech) / config.sample_rate:.0f} ms of speech were found; "
            f"at least {config.win_ms:.0f} ms (one analysis window) are needed."
        )
    return speech


# --------------------------------------------------------------------------- features


@lru_cache(maxsize=8)
def mel_filterbank(config: FrontEndConfig) -> torch.Tensor:
    """Slaney's mel filter bank, as librosa's `filters.mel` makes it by default, as a (n_mels, n_fft // 2 + 1)
    tensor: triangles between librosa's mel band edges over the FFT bins, each scaled to unit area.

    The triangles are drawn here because `librosa.filters` imports scipy.signal, which took 2 s of the
    server's start-up (its first request) for these few lines (tests/test_audio.py checks both agree)."""
    edges = librosa.mel_frequencies(config.n_mels + 2, fmin=config.f_min, fmax=config.f_max)
    bins = np.fft.rfftfreq(config.n_fft, d=1 / config.sample_rate)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    triangles = np.maximum(0, np.minimum((bins - low) / (centre - low), (high - bins) / (high - centre)))
    return torch.from_numpy(triangles * (2 / (high - low))).float()


def log_mel(samples: np.ndarray | torch.Tensor, config: FrontEndConfig) -> torch.Tensor:
    """(n_mels, frames) mel power of 16 kHz samples, log-compressed if the config says so.

    One frame per `hop_ms`; per-band normalisation is left to `cmvn`, so that a
    cut of the frames can be normalised over itself.
    """
    x = torch.as_tensor(samples, dtype=torch.float32)
    if config.target_dbfs is not None:
        rms = x.square().mean().sqrt().clamp_min(1e-8)
        x = x * (10 ** (config.target_dbfs / 20) / rms)
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=torch.hann_window(config.win_length),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    mel = mel_filterbank(config) @ spec.abs().square()
    return torch.log(mel + 1e-6) if config.log_compress else mel


def kaldi_fbank(samples: np.ndarray | torch.Tensor, config: FrontEndConfig) -> torch.Tensor:
    """(n_mels, frames) log mel energies as Kaldi's `compute-fbank-feats` gives them with dither 0 (and
    torchaudio's `compliance.kaldi.fbank`, which CAM++ was trained on): whole frames only, each frame's
    mean removed, pre-emphasis 0.97, Povey window, power spectrum, triangles on Kaldi's mel scale,
    natural log floored at float32's epsilon. tests/test_campplus.py checks it against kaldi-native-fbank."""
    x = torch.as_tensor(samples, dtype=torch.float32)
    win, hop = config.win_length, config.hop_length
    if len(x) < win:
        return torch.zeros(config.n_mels, 0)
    frames = x.unfold(0, win, hop)  # a view: each block below is copied as it is transformed
    return torch.cat([kaldi_fbank_frames(frames[i : i + FBANK_BLOCK_FRAMES], config)
                      for i in range(0, len(frames), FBANK_BLOCK_FRAMES)]).T  # fmt: skip


def kaldi_fbank_frames(frames: torch.Tensor, config: FrontEndConfig) -> torch.Tensor:
    """(n, win_length) samples of whole frames -> (n, n_mels) log mel energies, as `kaldi_fbank` describes."""
    frames = frames - frames.mean(dim=1, keepdim=True)
    frames = torch.cat([frames[:, :1] * (1 - PRE_EMPHASIS), frames[:, 1:] - PRE_EMPHASIS * frames[:, :-1]], dim=1)
    frames = frames * povey_window(frames.shape[1])
    power = torch.fft.rfft(frames, n=config.n_fft).abs().square()
    energies = power @ kaldi_mel_banks(config).T
    return energies.clamp_min(torch.finfo(torch.float32).eps).log()


#: Kaldi's pre-emphasis coefficient.
PRE_EMPHASIS = 0.97
#: Frames transformed at once (60 s): 300 s in one go held 230 MB of windows and spectra at its peak.
FBANK_BLOCK_FRAMES = 6000
FEATURE_KINDS = ("log-mel", "kaldi-fbank")


@lru_cache(maxsize=4)
def povey_window(length: int) -> torch.Tensor:
    """Kaldi's default window: a Hann window raised to the power 0.85."""
    n = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))).pow(0.85).float()


@lru_cache(maxsize=4)
def kaldi_mel_banks(config: FrontEndConfig) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangles, equally spaced on Kaldi's mel scale (1127 ln(1 + f / 700))
    between f_min and f_max, weighting the power of each FFT bin (the Nyquist bin gets none, as in Kaldi)."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    n_bins = config.n_fft // 2
    bin_mels = mel(np.arange(n_bins) * config.sample_rate / config.n_fft)
    low, high = mel(config.f_min), mel(config.f_max)
    step = (high - low) / (config.n_mels + 1)
    left = low + step * np.arange(config.n_mels)[:, None]
    centre, right = left + step, left + 2 * step
    rising, falling = (bin_mels - left) / (centre - left), (right - bin_mels) / (right - centre)
    banks = np.where((bin_mels > left) & (bin_mels < right), np.where(bin_mels <= centre, rising, falling), 0.0)
    return torch.from_numpy(np.pad(banks, ((0, 0), (0, 1)))).float()


def frame_features(samples: np.ndarray | torch.Tensor, config: FrontEndConfig) -> torch.Tensor:
    """(n_mels, frames): the features the front end names (`log_mel` or `kaldi_fbank`)."""
    return kaldi_fbank(samples, config) if config.features == "kaldi-fbank" else log_mel(samples, config)


def cmvn(features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Zero mean and unit variance per band (dim -2) over time (dim -1).

    With `lengths` (a zero-padded batch), each clip is normalised over its own
    frames only and its padding stays zero.
    """
    if lengths is None:
        mean = features.mean(dim=-1, keepdim=True)
        std = features.std(dim=-1, keepdim=True, unbiased=False).clamp_min(1e-5)
        return (features - mean) / std
    mask = (torch.arange(features.shape[-1], device=features.device)[None, :] < lengths[:, None].to(features.device))
    mask = mask[:, None, :].to(features.dtype)
    count = mask.sum(dim=-1, keepdim=True).clamp_min(1)
    mean = (features * mask).sum(dim=-1, keepdim=True) / count
    var = ((features - mean).square() * mask).sum(dim=-1, keepdim=True) / count
    return (features - mean) / var.sqrt().clamp_min(1e-5) * mask


def pad_features(clips: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips (n_mels, T_i) -> a zero-padded batch (B, n_mels, max T_i) and the lengths T_i, as encoders take them."""
    lengths = torch.tensor([c.shape[-1] for c in clips])
    batch = torch.nn.utils.rnn.pad_sequence([c.T for c in clips], batch_first=True).transpose(1, 2)
    return batch, lengths


# --------------------------------------------------------------------------- one utterance


@dataclass
class Utterance:
    """A decoded clip, its speech, and the speech's un-normalised features."""

    audio: Audio
    speech: np.ndarray  # 16 kHz samples with the silence removed
    features: torch.Tensor  # (n_mels, frames) from `log_mel`
    hop_seconds: float  # one frame's step

    @property
    def speech_seconds(self) -> float:
        """Seconds of speech as the frames count them: the same figure as the whole-clip cut's."""
        return self.features.shape[-1] * self.hop_seconds


def prepare_utterance(
    source: AudioSource, config: FrontEndConfig, max_seconds: float = MAX_AUDIO_SECONDS, trusted: bool = False
) -> Utterance:
    """Decode, remove silence and compute features: everything before the networks.

    Unless the clip is `trusted` (a training set's own files), it is decoded in a
    worker process and must sound like a voice to a speech detector.
    """
    audio = load_audio(source, config.sample_rate, max_seconds, isolate=not trusted)
    speech = remove_silence(audio.samples, config)
    if not trusted and config.sample_rate == SPEECH_CHECK_RATE:
        require_speech(speech, audio.samples)
    return Utterance(audio, speech, frame_features(speech, config), config.hop_ms / 1000)
