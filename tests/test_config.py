"""Training settings: typed overrides with clear errors, widths that follow the encoder, no silent overwrites."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from voice2face.errors import Voice2FaceError
from voice2face.pipeline import Voice2Face
from voice2face.training import load_config, train

from .conftest import tiny_config


def test_command_line_values_take_the_fields_type():
    config = load_config("paper", None, ["steps=300", "lr=1e-3", "betas=[0.1,0.2]", "attribute_columns=gender", "decoder=123",
                                         "model.generator.standardise_input=true", "stage=face-eval"])  # fmt: skip
    assert config.steps == 300 and config.lr == 1e-3 and config.betas == (0.1, 0.2)
    assert config.attribute_columns == ("gender",) and config.decoder == "123"
    assert config.model.generator.standardise_input is True and config.stage == "grader"  # the old stage name still works
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 5  # type: ignore[misc]


@pytest.mark.parametrize("setting, message", [
    ("steps=abc", "Setting 'steps'.*'abc'"),
    ("lr=[1]", "Setting 'lr'.*number"),
    ("model.generator.channels=7", "takes 5 generator.channels"),
    ("model.generator.colour=red", "Unknown setting 'model.generator.colour'"),
    ("model.generator.standardise_input=maybe", "true or false"),
    ("real_share=1.5", "real_share is a share.*between 0 and 1"),
    ("synthetic_gender_weight=-1", "synthetic_gender_weight weighs synthetic voices.*0 or more"),
    ("speakers_per_batch=1", "speakers_per_batch must be at least 2"),
])  # fmt: skip
def test_bad_values_name_the_key(setting, message):
    with pytest.raises(Voice2FaceError, match=message):
        load_config("paper", None, [setting])


def test_bad_setting_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "voice2face", "train", "--data", str(tmp_path), "--set", "steps=abc"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "steps" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_help_and_errors_import_no_torch():
    code = "import sys; import voice2face.errors; from voice2face.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_embedding_width_set_once_reaches_the_generator(tiny_dataset, tmp_path):
    train(tiny_config("embedder", tiny_dataset, tmp_path / "emb", "steps=2", "model.voice.embedding_dim=24"))
    train(tiny_config("gan", tiny_dataset, tmp_path / "gan", "steps=2", f"voice_encoder={tmp_path / 'emb'}"))
    model = Voice2Face.from_pretrained(tmp_path / "gan")
    assert model.voice_encoder.embedding_dim == 24 and model.generator.net[0].in_channels == 24


def test_gan_stage_refuses_a_front_end_the_encoder_does_not_read(tiny_dataset, embedder_run, tmp_path):
    with pytest.raises(Voice2FaceError, match="front_end was set.*remove that setting"):
        train(tiny_config("gan", tiny_dataset, tmp_path / "gan", f"voice_encoder={embedder_run}", "front_end.hop_ms=20"))
