"""The face-space model: labelled readers, the face-gan, face-attributes and voice-map stages, and the judges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from safetensors.torch import load_file

from voice2face.checkpoint import read_info
from voice2face.datasets.labelled import read_emodb, read_utkface
from voice2face.errors import Voice2FaceError
from voice2face.evaluate.judges import AgeGenderJudge, FaceDescriptor, FaceReading, framed, mean_pairwise_distance
from voice2face.pipeline import Voice2Face
from voice2face.training import load_config, train
from voice2face.training.voice_map import geometry_losses

from .conftest import TINY_IDENTITIES, losses

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FACE_SETTINGS = ["batch_size=8", "num_workers=0", "log_every=1", "checkpoint_every=2", "sample_every=2", "init_decoder=none"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """24 'photos' named the UTKFace way (age_gender_race_date.jpg.chip.jpg): women bright, men dark; two children."""
    root = tmp_path_factory.mktemp("utk")
    rng = np.random.default_rng(0)
    for k in range(24):
        female, age = k % 2, 20 + k
        base = 190 if female else 60
        pixels = np.clip(base + rng.normal(0, 20, (80, 80, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"{age}_{female}_0_20170101{k:04d}.jpg.chip.jpg")
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(root / "5_0_0_20170101.jpg.chip.jpg")
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(root / "7_1_0_20170102.jpg.chip.jpg")
    (root / "61_1_20170109142408075.jpg.chip.jpg").write_bytes(b"")  # one of UTKFace's names without a race field
    return root


@pytest.fixture(scope="module")
def emodb(tiny_dataset, tmp_path_factory):
    """An EmoDB-shaped folder: speakers.csv and wav/SSxxxxx.flac, from the tiny dataset's espeak voices."""
    root = tmp_path_factory.mktemp("emodb")
    (root / "wav").mkdir()
    rows = ["speaker,gender,age"]
    for k, (name, _, _, gender) in enumerate(TINY_IDENTITIES[:6]):
        code = f"{k + 3:02d}"
        rows.append(f"{code},{gender},{25 + k}")
        for n, wav in enumerate(sorted((tiny_dataset / name / "voice").glob("*.wav"))):
            data, rate = soundfile.read(wav)
            soundfile.write(root / "wav" / f"{code}a0{n}Fa.flac", data, rate)
    (root / "speakers.csv").write_text("\n".join(rows) + "\n")
    return root


def test_utkface_names_give_age_and_gender_and_children_are_left_out(photos):
    adults = read_utkface(photos, min_age=16)
    assert len(adults) == 24 and {p.gender for p in adults} == {"m", "f"}
    first = next(p for p in adults if p.path.name.startswith("20_0"))
    assert first.age == 20 and first.gender == "m"
    assert len(read_utkface(photos)) == 26  # the children, and not the name that does not parse
    with pytest.raises(Voice2FaceError, match="age >= 200"):
        read_utkface(photos, min_age=200)


def test_emodb_reader_groups_clips_by_speaker(emodb):
    speakers = read_emodb(emodb)
    assert [s.name for s in speakers] == ["03", "04", "05", "06", "07", "08"]
    assert speakers[0].gender == "f" and speakers[0].age == 25 and len(speakers[0].clips) == 3


@pytest.fixture(scope="module")
def face_gan_run(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "face-gan"
    train(load_config("paper", None, ["stage=face-gan", f"data={photos}", f"out={out}", "steps=4", *FACE_SETTINGS]))
    return out


@pytest.fixture(scope="module")
def attributes_run(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "face-attributes"
    train(load_config("paper", None, ["stage=face-attributes", f"data={photos}", f"out={out}", "steps=30", "lr=3e-3",
                                      "val_fraction=0.25", *FACE_SETTINGS]))  # fmt: skip
    return out


def test_face_gan_stage_trains_a_decoder_and_resumes(face_gan_run, photos):
    info = read_info(face_gan_run)
    assert info.kind == "face-decoder" and set(info.networks) == {"decoder", "face_discriminator"}
    assert "24 real face photos" in info.trained_on and "non-commercial" in info.trained_on
    rows = losses(face_gan_run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and len({r["d"] for r in rows}) > 1
    assert sorted(p.name for p in (face_gan_run / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    summary = train(load_config("paper", None, ["stage=face-gan", f"data={photos}", f"out={face_gan_run}", "steps=6", *FACE_SETTINGS]))
    assert summary["steps"] == 6 and [int(r["step"]) for r in losses(face_gan_run)][-2:] == [5, 6]


def test_face_attributes_stage_learns_gender_from_photos(attributes_run):
    info = read_info(attributes_run)
    assert info.kind == "face-attributes"
    assert info.training["val_photos"] == 6 and info.training["val_gender_accuracy"] >= 5 / 6  # bright vs dark: easy


def test_voice_map_stage_maps_voices_into_the_decoders_space(tiny_dataset, emodb, face_gan_run, attributes_run, tmp_path, speech_wav):
    out = tmp_path / "map"
    settings = ["stage=voice-map", f"data={tiny_dataset}", f"out={out}", f"real_voices={emodb}", 'real_holdout=["03","04"]',
                "voice_encoder=ge2e-pretrained", f"decoder={face_gan_run}", f"attribute_net={attributes_run}", "embedding_crops=2",
                "crop_min=50", "crop_max=200", "steps=3", "log_every=1", "sample_every=3", "checkpoint_every=3"]  # fmt: skip
    summary = train(load_config("paper", None, settings))
    assert summary["steps"] == 3 and summary["real_speakers"] == 4 and summary["held_out_speakers"][:2] == ["emodb-03", "emodb-04"]
    rows = losses(out)
    assert {"gender", "age", "diversity", "consistency", "prior"} <= set(rows[0]) and len({r["prior"] for r in rows}) > 1
    model = Voice2Face.from_pretrained(out)
    assert model.info.model.generator.backend == "face-space" and "not by identity" in model.info.trained_on
    frozen = load_file(str(face_gan_run / "decoder.safetensors"))
    mapped = model.generator.decoder.state_dict()
    assert all(torch.equal(frozen[k], mapped[k]) for k in frozen), "the decoder must stay frozen under the map"
    result = model.faces_for_durations(speech_wav, (1, None))
    assert len(result.images) == 2 and result.images[0].size == (64, 64)
    with pytest.raises(Voice2FaceError, match="decoder="):
        train(load_config("paper", None, [s for s in settings if not s.startswith("decoder=")] + [f"out={tmp_path / 'x'}"]))


def test_geometry_losses_punish_one_face_per_group_scattered_speakers_and_collapse():
    torch.manual_seed(0)
    owners = torch.arange(8).repeat_interleave(4)
    voices = torch.randn(8, 16)[owners] + 0.01 * torch.randn(32, 16)
    faithful = geometry_losses(voices, torch.cat([voices, torch.zeros(32, 84)], 1) * 2.5, owners)
    one_per_gender = geometry_losses(voices, torch.randn(2, 100)[owners % 2] + 0.01 * torch.randn(32, 100), owners)
    scattered = geometry_losses(voices, torch.randn(32, 100), owners)
    collapsed = geometry_losses(voices, torch.randn(1, 100).expand(32, 100) + 0.01 * torch.randn(32, 100), owners)
    assert faithful["diversity"] < 0.05 and one_per_gender["diversity"] > 0.5  # speakers' proportions kept, or not
    assert faithful["consistency"] < 0.01 < scattered["consistency"]  # one speaker's clips together, or not
    assert scattered["prior"] < 0.2 < collapsed["prior"]  # spread like N(0, I), or one point


def test_framing_and_descriptor_distances():
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert framed(face).shape == (224, 224, 3)
    d = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    assert mean_pairwise_distance(d, ["a", "a", "b"], same=True).tolist() == [5.0]
    assert sorted(mean_pairwise_distance(d, ["a", "a", "b"], same=False).tolist()) == [1.0, pytest.approx(np.sqrt(18))]


def test_judges_read_real_photos_and_find_no_face_in_noise():
    folder = SHARED / "data" / "utkface" / "crop_part1"
    if not folder.is_dir():
        pytest.skip("../shared/data/utkface is absent (it sits beside the repository on the team's machines and in CI)")
    photos = [p for p in read_utkface(folder, 20) if p.age <= 50][:40:4]  # ten adults
    faces = [Image.open(p.path).convert("RGB").resize((64, 64), Image.Resampling.LANCZOS) for p in photos]
    readings = AgeGenderJudge().read(faces)
    assert sum(r.found for r in readings) >= 9
    assert sum(r.gender == p.gender for r, p in zip(readings, photos)) >= 8
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert AgeGenderJudge().read([noise])[0] == FaceReading(False, "", 0, -1)
    descriptors = FaceDescriptor().describe(faces[:3] + faces[:1])
    assert np.allclose(descriptors[0], descriptors[3])  # the same photo, the same descriptor
    assert mean_pairwise_distance(descriptors[:3], [0, 1, 2], same=False).mean() > 0.6  # three people: far apart
