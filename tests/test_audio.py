"""The audio front end: decoding, VAD, log-mel features, duration cuts, and bad input."""

from __future__ import annotations

import io
import tracemalloc

import av
import librosa
import numpy as np
import pytest
import soundfile
import torch

from voice2face.audio.front_end import (
    FrontEndConfig,
    cmvn,
    log_mel,
    mel_filterbank,
    prepare_utterance,
    remove_silence,
)
from voice2face.audio.load import load_audio
from voice2face.errors import AudioError, Voice2FaceError
from voice2face.lengths import parse_durations, plan_cuts, round_seconds, seconds_text
from voice2face.models import GE2E_FRONT_END

CFG = FrontEndConfig()


def wav_bytes(data: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, data, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("config", [FrontEndConfig(), GE2E_FRONT_END], ids=["paper", "ge2e"])
def test_mel_filterbank_is_librosas(config):
    """Our triangles (drawn without importing scipy.signal) are librosa's Slaney filter bank."""
    expected = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.f_min, fmax=config.f_max)
    np.testing.assert_allclose(mel_filterbank(config).numpy(), expected, rtol=1e-5, atol=1e-8)


def test_sine_energy_lands_in_the_right_mel_band():
    t = np.arange(16000) / 16000
    features = log_mel(0.5 * np.sin(2 * np.pi * 1000 * t), CFG)
    assert features.shape == (64, 101)  # one frame per 10 ms hop, centred
    centres = librosa.mel_frequencies(n_mels=CFG.n_mels + 2, fmin=CFG.f_min, fmax=CFG.f_max)[1:-1]
    assert int(features.mean(dim=1).argmax()) == int(np.abs(centres - 1000).argmin())


def test_cmvn_gives_zero_mean_unit_variance_per_band():
    x = torch.randn(64, 300) * torch.linspace(0.1, 10, 64)[:, None] + 5
    y = cmvn(x)
    assert torch.allclose(y.mean(dim=1), torch.zeros(64), atol=1e-5)
    assert torch.allclose(y.std(dim=1, unbiased=False), torch.ones(64), atol=1e-4)


def test_features_of_speech_are_finite_and_64_band(speech_wav):
    utt = prepare_utterance(speech_wav, CFG)
    assert utt.features.shape[0] == 64
    assert torch.isfinite(utt.features).all()
    assert abs(utt.features.shape[1] - utt.speech_seconds * 100) <= 2


# --------------------------------------------------------------------------- VAD


def test_inserted_silence_is_removed(speech):
    data, rate = speech
    # insert the gap in a pause near the middle, as a speaker would pause
    window = rate // 20
    energy = np.convolve(data**2, np.ones(window), mode="same")
    quarter = len(data) // 4
    middle = quarter + int(np.argmin(energy[quarter:-quarter]))
    with_gap = np.concatenate([data[:middle], np.zeros(3 * rate, np.float32), data[middle:]])
    plain = prepare_utterance((rate, data), CFG).speech_seconds
    gapped = prepare_utterance((rate, with_gap), CFG).speech_seconds
    assert len(with_gap) / rate - len(data) / rate == pytest.approx(3.0, abs=0.01)
    assert gapped == pytest.approx(plain, abs=0.1)
    assert plain < len(data) / rate  # the pauses in the speech itself went too


def test_all_silence_is_refused():
    with pytest.raises(AudioError, match="silent"):
        prepare_utterance((16000, np.zeros(32000, np.float32)), CFG)


def test_no_speech_found_by_the_vad_is_refused():
    hiss = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 3e-4  # faint hiss, peak above the silence gate
    with pytest.raises(AudioError, match="No speech was found"):
        prepare_utterance((16000, hiss), CFG)


def test_speech_shorter_than_one_window_is_refused(speech):
    data, rate = speech
    audio = load_audio((rate, data))
    frame = 320  # one 20 ms VAD frame at 16 kHz
    loud = int(np.argmax(np.abs(audio.samples))) // frame * frame
    with pytest.raises(AudioError, match="25 ms"):
        remove_silence(audio.samples[loud : loud + frame], CFG)


# --------------------------------------------------------------------------- rates, channels, types


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_sample_rate_is_resampled_to_16k(speech, rate):
    data, source_rate = speech
    resampled = librosa.resample(data, orig_sr=source_rate, target_sr=rate)
    audio = load_audio(wav_bytes(resampled, rate))
    assert audio.sample_rate == 16000 and audio.source_sample_rate == rate
    assert audio.seconds == pytest.approx(len(data) / source_rate, abs=0.01)
    reference = prepare_utterance((source_rate, data), CFG).speech_seconds
    assert prepare_utterance(wav_bytes(resampled, rate), CFG).speech_seconds == pytest.approx(reference, rel=0.1)


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_mixed_to_mono(speech, channels):
    data, rate = speech
    multi = np.tile(data[:, None], (1, channels))
    audio = load_audio(wav_bytes(multi, rate, "FLOAT"))
    assert audio.source_channels == channels
    np.testing.assert_allclose(audio.samples, load_audio((rate, data)).samples, atol=1e-6)


def test_gradio_numpy_pairs_of_any_sample_type_agree(speech):
    data, rate = speech
    reference = load_audio((rate, data)).samples
    as_int16 = (data * 32767).astype(np.int16)
    as_int32 = (data.astype(np.float64) * 2147483647).astype(np.int32)
    stereo_int16 = np.stack([as_int16, as_int16], axis=1)  # Gradio's (samples, channels)
    for variant in (as_int16, as_int32, data.astype(np.float64), stereo_int16):
        np.testing.assert_allclose(load_audio((rate, variant)).samples, reference, atol=2e-4)


def test_bytes_and_path_give_the_same_samples(speech_wav):
    np.testing.assert_array_equal(load_audio(speech_wav).samples, load_audio(speech_wav.read_bytes()).samples)


# --------------------------------------------------------------------------- formats


def encode_with_pyav(data: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=48000)
        stream.layout = "mono"
        resampled = librosa.resample(data, orig_sr=rate, target_sr=48000).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(resampled[None, :], format="flt", layout="mono")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(
    "fmt",
    ["flac", "ogg-vorbis", "ogg-opus", "mp3", "webm-opus"],
)
def test_compressed_formats_decode_to_the_same_speech(speech, fmt):
    data, rate = speech
    if fmt == "webm-opus":
        blob = encode_with_pyav(data, rate, "webm", "libopus")
    else:
        buf = io.BytesIO()
        kind, _, subtype = fmt.partition("-")
        if subtype == "opus":  # Opus takes 48 kHz, as browsers record it
            data, rate = librosa.resample(data, orig_sr=rate, target_sr=48000), 48000
        soundfile.write(buf, data, rate, format=kind.upper(), subtype=subtype.upper() or None)
        blob = buf.getvalue()
    reference = prepare_utterance((rate, data), CFG).speech_seconds
    assert prepare_utterance(blob, CFG).speech_seconds == pytest.approx(reference, abs=0.25)


# --------------------------------------------------------------------------- bad files


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(empty)
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"")


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="No audio file"):
        load_audio(tmp_path / "nope.wav")


def test_non_audio_file(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("these are not the samples you are looking for\n" * 20)
    with pytest.raises(AudioError, match="Could not decode the file notes.wav"):
        load_audio(text)


def test_truncated_wav(speech, tmp_path):
    data, rate = speech
    blob = wav_bytes(data, rate)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(cut)
    with pytest.raises(AudioError, match="Could not decode"):
        load_audio(blob[:30])  # cut inside the header


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples_are_refused(speech, bad):
    data, rate = speech
    broken = data.copy()
    broken[1000] = bad
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio((rate, broken))


def test_two_hour_file_reads_only_the_limit(speech, tmp_path):
    data, rate = speech
    data_8k = librosa.resample(data, orig_sr=rate, target_sr=8000)
    path = tmp_path / "two_hours.wav"
    silence = np.zeros(8000 * 60, np.float32)
    with soundfile.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        f.write(data_8k)
        for _ in range(120):
            f.write(silence)
    tracemalloc.start()
    audio = load_audio(path, max_seconds=60)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert audio.truncated and audio.source_seconds > 7200
    assert audio.seconds == pytest.approx(60, abs=0.01)
    assert peak < 50e6  # the whole file as float32 would be 230 MB


# --------------------------------------------------------------------------- durations


def test_cuts_hold_the_stated_seconds(speech_wav):
    utt = prepare_utterance(speech_wav, CFG)
    n = utt.features.shape[1]
    cuts = plan_cuts(n, (1, 2.5, 4, 100, None), CFG)
    assert [c.frames for c in cuts[:3]] == [100, 250, 400]
    assert [c.seconds for c in cuts[:3]] == pytest.approx([1.0, 2.5, 4.0])
    assert cuts[3].capped and cuts[3].frames == n and "clip has" in cuts[3].label
    assert cuts[4].requested is None and not cuts[4].capped and cuts[4].frames == n
    assert cuts[4].seconds == pytest.approx(utt.speech_seconds, abs=0.02)


@pytest.mark.parametrize("bad", [0, -1, "-2", "abc", float("nan")])
def test_non_positive_or_non_numeric_durations_are_refused(bad):
    with pytest.raises(Voice2FaceError, match="Length"):
        parse_durations([1, bad])


def test_full_means_the_whole_clip():
    assert parse_durations(["1", 2.5, "full", None, "whole"]) == (1.0, 2.5, None, None, None)


@pytest.mark.parametrize("seconds, text", [(9.55, "9.6 s"), (9.549, "9.5 s"), (0.05, "0.1 s"), (12.25, "12.3 s"), (0.0, "0.0 s")])
def test_seconds_are_rounded_half_up_everywhere_they_are_shown(seconds, text):
    assert seconds_text(seconds) == text and f"{round_seconds(seconds):.1f} s" == text


def test_a_missing_file_is_named_without_its_folders():
    with pytest.raises(AudioError) as missing:
        load_audio("/srv/uploads/secret-folder/clip.wav")
    assert "'clip.wav'" in str(missing.value) and "secret-folder" not in str(missing.value)
