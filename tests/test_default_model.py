"""The shipped default checkpoint: honest about its data, and its faces follow the voice."""

from __future__ import annotations

import numpy as np
import pytest

from voice2face import Voice2Face
from voice2face.judges import AgeGenderJudge

from .conftest import TEXT, speak


@pytest.fixture(scope="module")
def model() -> Voice2Face:
    return Voice2Face.from_pretrained()


def test_default_checkpoint_says_what_it_learned_from(model):
    assert "synthetic" in model.info.trained_on and "not real people" in model.info.trained_on
    assert model.info.training["stage"] == "gan" and model.info.training["steps"] >= 1000
    assert model.info.model.voice.backend == "ge2e" and model.voice_encoder.embedding_dim == 256


def test_held_out_male_and_female_voices_get_faces_of_their_gender(model, tmp_path):
    # espeak variants 'paul' (M) and 'linda' (F) are held out of the default model's training set
    male = speak(tmp_path / "male.wav", TEXT, "en-us+paul", pitch=35)
    female = speak(tmp_path / "female.wav", TEXT, "en+linda", pitch=70)
    male_face, female_face = model(male), model(female)
    difference = np.abs(np.asarray(male_face, float) - np.asarray(female_face, float)).mean()
    assert difference > 10  # grey levels: clearly different faces
    judged = AgeGenderJudge().read_without_detection([male_face, female_face])
    assert [a.gender for a in judged] == ["m", "f"]
