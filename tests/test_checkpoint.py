"""Checkpoints round-trip exactly and fail loudly when damaged or mismatched."""

from __future__ import annotations

import json

import pytest
import torch

from voice2face.checkpoint import CheckpointInfo, load_weights, read_info, save_checkpoint
from voice2face.errors import CheckpointError
from voice2face.models import Generator, GeneratorConfig
from voice2face.pipeline import Voice2Face

from .conftest import write_random_checkpoint


def test_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    gen = Generator(GeneratorConfig(channels=(64, 32, 16, 8, 4)), 64)
    save_checkpoint(tmp_path / "c", CheckpointInfo(), {"generator": gen})
    again = load_weights(tmp_path / "c", "generator", Generator(GeneratorConfig(channels=(64, 32, 16, 8, 4)), 64))
    for (k, a), (_, b) in zip(gen.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_float16_storage_loads_as_float32_rounded(tmp_path):
    torch.manual_seed(1)
    gen = Generator(GeneratorConfig(channels=(64, 32, 16, 8, 4)), 64)
    save_checkpoint(tmp_path / "c", CheckpointInfo(), {"generator": gen}, dtype=torch.float16)
    again = load_weights(tmp_path / "c", "generator", Generator(GeneratorConfig(channels=(64, 32, 16, 8, 4)), 64))
    w, w2 = gen.state_dict()["net.0.weight"], again.state_dict()["net.0.weight"]
    assert w2.dtype == torch.float32 and torch.equal(w2, w.half().float())
    assert read_info(tmp_path / "c").weights_dtype == "float16"


def test_config_records_what_and_how(random_checkpoint):
    info = read_info(random_checkpoint)
    assert info.trained_on == "nothing (random init)"
    assert info.code_version and info.front_end.n_mels == 64
    assert info.model.generator.channels == (128, 64, 32, 16, 8)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint directory"):
        Voice2Face.from_pretrained(tmp_path / "absent")


def test_directory_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        Voice2Face.from_pretrained(tmp_path / "empty")


def test_missing_weights_file(tmp_path):
    path = write_random_checkpoint(tmp_path / "c")
    (path / "generator.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no generator.safetensors"):
        Voice2Face.from_pretrained(path)


def test_truncated_weights_file(tmp_path):
    path = write_random_checkpoint(tmp_path / "c")
    file = path / "voice_encoder.safetensors"
    file.write_bytes(file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        Voice2Face.from_pretrained(path)


def test_mismatched_architecture(tmp_path):
    path = write_random_checkpoint(tmp_path / "c")
    config = json.loads((path / "config.json").read_text())
    config["model"]["generator"]["channels"] = [256, 128, 64, 32, 16]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match the architecture"):
        Voice2Face.from_pretrained(path)


def test_damaged_or_foreign_config(tmp_path):
    path = write_random_checkpoint(tmp_path / "c")
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        Voice2Face.from_pretrained(path)
    (path / "config.json").write_text(json.dumps({"model": {"colour": "blue"}}))
    with pytest.raises(CheckpointError, match="colour"):
        Voice2Face.from_pretrained(path)


def test_cuda_asked_without_a_gpu_is_a_clear_error(random_checkpoint):
    if torch.cuda.is_available():
        assert Voice2Face.from_pretrained(random_checkpoint, device="cuda").device.type == "cuda"
    else:
        with pytest.raises(Exception, match="no CUDA GPU"):
            Voice2Face.from_pretrained(random_checkpoint, device="cuda")


def test_shipped_default_checkpoint_loads_and_says_what_it_is():
    model = Voice2Face.from_pretrained()
    assert model.info.trained_on
    assert model.device.type == "cpu"


def test_format_1_checkpoints_still_read(tmp_path):
    """A format-1 config.json (no kind, the generator's own embedding_dim, old buffer names) loads as format 2."""
    from safetensors.torch import load_file, save_file

    path = write_random_checkpoint(tmp_path / "v1")
    config = json.loads((path / "config.json").read_text())
    del config["kind"], config["networks"]
    config["format_version"] = 1
    config["model"]["generator"]["embedding_dim"] = 64
    config["model"]["generator"]["standardise_input"] = True
    config["training"] = {"stage": "gan"}
    (path / "config.json").write_text(json.dumps(config))
    weights = load_file(str(path / "generator.safetensors"))
    weights |= {"input_mean": torch.full((64,), 0.5), "input_std": torch.full((64,), 2.0)}
    save_file(weights, str(path / "generator.safetensors"))
    model = Voice2Face.from_pretrained(path)
    assert model.info.kind == "voice-to-face" and model.info.format_version == 2
    assert torch.equal(model.generator.standardise.input_mean, torch.full((64,), 0.5))
    config["training"] = {"stage": "face-eval", "role": "evaluator"}
    (path / "config.json").write_text(json.dumps(config))
    assert read_info(path).kind == "grader"


TAMPERED = [
    (("model", "voice", "backend"), "nonsense", "unknown voice encoder backend"),
    (("model", "generator", "backend"), "biggan", "unknown generator backend"),
    (("model", "generator", "channels"), [1.5, 8, 8, 8, 8], "whole number"),
    (("model", "generator", "channels"), [-4, 8, 8, 8, 8], "generator.channels"),
    (("model", "generator", "channels"), "wide", "expected a list"),
    (("model", "generator", "channels"), [200000, 8, 8, 8, 8], "generator.channels"),
    (("format_version",), "1", "whole number"),
    (("format_version",), 3, "newer voice2face"),
    (("front_end", "hop_ms"), 0, "hop_ms"),
    (("front_end", "hop_ms"), 0.001, "hop_ms"),
    (("model", "voice", "channels"), [4096] * 6, "would hold"),
    (("front_end", "sample_rate"), 0, "sample_rate"),
    (("front_end", "vad_mode"), 9, "vad_mode"),
    (("front_end", "vad_frame_ms"), 7, "vad_frame_ms"),
    (("front_end", "n_fft"), 2**24, "n_fft"),
    (("trained_on",), 5, "text"),
    (("kind",), "toaster", "unknown kind"),
]


@pytest.mark.parametrize("keys, value, message", TAMPERED, ids=["/".join(t[0]) + "=" + str(t[1])[:12] for t in TAMPERED])
def test_tampered_configs_are_refused_before_any_network_is_built(tmp_path, keys, value, message):
    path = write_random_checkpoint(tmp_path / "c")
    config = json.loads((path / "config.json").read_text())
    node = config
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        Voice2Face.from_pretrained(path)


def test_non_finite_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    path = write_random_checkpoint(tmp_path / "c")
    weights = load_file(str(path / "generator.safetensors"))
    weights["net.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(weights, str(path / "generator.safetensors"))
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        Voice2Face.from_pretrained(path)


def test_a_config_nested_too_deep_or_too_large_is_one_message(tmp_path):
    path = write_random_checkpoint(tmp_path / "c")
    (path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        Voice2Face.from_pretrained(path)
    (path / "config.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(CheckpointError, match="not one"):
        Voice2Face.from_pretrained(path)


def test_a_config_asking_for_gigabytes_is_refused_before_allocating_them(tmp_path):
    import tracemalloc

    path = write_random_checkpoint(tmp_path / "c")
    config = json.loads((path / "config.json").read_text())
    config["model"]["voice"]["channels"] = [4096] * 6
    (path / "config.json").write_text(json.dumps(config))
    tracemalloc.start()
    with pytest.raises(CheckpointError, match="voice_encoder would hold"):
        Voice2Face.from_pretrained(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20


@pytest.mark.parametrize("tamper, message", [
    (lambda w: w.to(torch.int64), "must be floating point"),
    (lambda w: w > 0, "must be floating point"),
    (lambda w: w * 1e30, "weights over"),
])  # fmt: skip
def test_weights_of_the_wrong_kind_or_size_are_refused(tmp_path, tamper, message):
    from safetensors.torch import load_file, save_file

    path = write_random_checkpoint(tmp_path / "c")
    weights = load_file(str(path / "generator.safetensors"))
    weights["net.0.weight"] = tamper(weights["net.0.weight"])
    save_file(weights, str(path / "generator.safetensors"))
    with pytest.raises(CheckpointError, match=message):
        Voice2Face.from_pretrained(path)


def test_a_checkpoint_of_another_kind_is_named(random_checkpoint):
    from voice2face.paths import GE2E_CHECKPOINT

    with pytest.raises(CheckpointError, match="is a 'voice-encoder' checkpoint; this needs 'voice-to-face'"):
        Voice2Face.from_pretrained(GE2E_CHECKPOINT)
    assert Voice2Face.from_pretrained(random_checkpoint).path == random_checkpoint


def test_loading_the_default_model_imports_neither_sympy_nor_dynamo():
    """Drawing random numbers or dividing on the meta device, where the size check builds the networks, imported
    sympy (0.34 s) and torch._dynamo (1.1 s) into every start; a fresh process shows what loading imports."""
    import subprocess
    import sys

    probe = ("import sys; from voice2face import Voice2Face; Voice2Face.from_pretrained(); "
             "print(sorted(m for m in ('sympy', 'torch._dynamo') if m in sys.modules))")  # fmt: skip
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip().splitlines()[-1] == "[]"
