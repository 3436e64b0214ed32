"""Training on a tiny generic-layout dataset the test writes: every stage, resume, DDP, data layouts."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from voice2face.audio.front_end import FrontEndConfig
from voice2face.datasets.paired import list_split, load_identities, paper_split, read_voxceleb_meta, split_identities
from voice2face.errors import Voice2FaceError
from voice2face.pipeline import Voice2Face
from voice2face.training import load_config, train

from .conftest import losses, run_main
from .conftest import tiny_config as config

# --------------------------------------------------------------------------- data


def test_voxceleb_meta_parser_reads_the_real_format(tmp_path):
    meta = tmp_path / "vox1_meta.csv"
    meta.write_text(
        "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
        "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
        "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
        "id10270\tEddie_Izzard\tm\tUK\ttest\n"
        "id10309\tElisabeth_Shue\tf\tUSA\ttest\n"
    )
    rows = read_voxceleb_meta(meta)
    assert rows["id10001"] == {"name": "A.J._Buckley", "gender": "m", "nationality": "Ireland", "set": "dev"}
    assert rows["id10309"]["gender"] == "f" and rows["id10270"]["set"] == "test"


def test_voxceleb_layout_maps_ids_to_names(tmp_path, tiny_dataset):
    (tmp_path / "wav" / "id10001" / "vid1").mkdir(parents=True)
    (tmp_path / "wav" / "id10001" / "vid1" / "00001.wav").write_bytes((tiny_dataset / "Alice/voice/0.wav").read_bytes())
    (tmp_path / "faces" / "A.J._Buckley").mkdir(parents=True)
    (tmp_path / "faces" / "A.J._Buckley" / "1.jpg").write_bytes(b"")
    (tmp_path / "meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\nid10001\tA.J._Buckley\tm\tIreland\tdev\n")
    [ident] = load_identities(tmp_path / "wav", meta=tmp_path / "meta.csv", faces=tmp_path / "faces")
    assert ident.name == "A.J._Buckley" and ident.gender == "m" and ident.extra["voxceleb_id"] == "id10001"
    assert len(ident.voices) == 1 and len(ident.faces) == 1


def test_generic_layout_reads_meta(tiny_dataset):
    identities = load_identities(tiny_dataset)
    assert len(identities) == 10
    alice = next(i for i in identities if i.name == "Alice")
    assert alice.gender == "f" and alice.extra == {"age": "adult"} and len(alice.voices) == 3 and len(alice.faces) == 4


def test_splits_never_share_an_identity(tiny_dataset, tmp_path):
    identities = load_identities(tiny_dataset)
    train_ids, test_ids = paper_split(identities)
    assert {i.name for i in test_ids} == {"Alice", "Bruno", "Chloe", "Dmitri"}
    assert not {i.name for i in train_ids} & {i.name for i in test_ids}
    listed = tmp_path / "test.txt"
    listed.write_text("Karl\nJulia\n")
    train_ids, test_ids = list_split(identities, listed)
    assert {i.name for i in test_ids} == {"Karl", "Julia"} and len(train_ids) == 8
    assert len(split_identities(identities, str(listed))[0]) == 8


def test_feature_cache_round_trips_and_trains(tiny_dataset, tmp_path):
    from voice2face.audio.front_end import FrontEndConfig
    from voice2face.datasets.paired import build_feature_cache, voice_features

    cache = build_feature_cache(load_identities(tiny_dataset), tmp_path / "cache", FrontEndConfig())
    cached = load_identities(cache)
    assert len(cached) == 10 and all(v.suffix == ".npy" for i in cached for v in i.voices)
    original = voice_features(load_identities(tiny_dataset)[0].voices[0], FrontEndConfig())
    from_cache = voice_features(cached[0].voices[0], FrontEndConfig())
    assert from_cache.shape == original.shape
    assert torch.allclose(from_cache, original, atol=0.02)  # stored as float16
    train(config("embedder", cache, tmp_path / "run", "steps=2"))
    assert (tmp_path / "run" / "voice_encoder.safetensors").is_file()


# --------------------------------------------------------------------------- stages


def test_embedder_stage_losses_are_finite_and_move(embedder_run):
    rows = losses(embedder_run)
    assert len(rows) == 6 and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    assert len({r["loss"] for r in rows}) > 1
    info = json.loads((embedder_run / "config.json").read_text())
    assert info["training"]["stage"] == "embedder" and info["training"]["steps"] == 6
    assert 0 <= info["training"]["speaker_top1"] <= 1


def test_gan_stage_losses_move_and_checkpoint_loads_in_the_pipeline(gan_run, speech_wav):
    rows = losses(gan_run)
    assert len(rows) == 6
    for key in ("d_real", "d_fake", "c_real", "g_adv", "g_id"):
        values = [r[key] for r in rows]
        assert all(torch.isfinite(torch.tensor(values))) and len(set(values)) > 1, key
    assert sorted(p.name for p in (gan_run / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    model = Voice2Face.from_pretrained(gan_run)
    assert "training identities" in model.info.trained_on
    settings = model.info.training["settings"]  # every knob of the run, to rerun it
    assert settings["crop_min"] == 40 and settings["lr"] == 2e-4 and settings["betas"] == [0.5, 0.999]
    assert settings["voice_encoder"] == "embedder"  # where it came from, without this machine's absolute path
    assert str(gan_run.parent) not in (gan_run / "config.json").read_text()
    assert model.info.kind == "voice-to-face" and model.path == gan_run
    assert len(model.faces_for_durations(speech_wav, (1, None)).images) == 2


def test_gan_stage_needs_a_voice_encoder(tiny_dataset, tmp_path):
    with pytest.raises(Voice2FaceError, match="voice_encoder"):
        train(config("gan", tiny_dataset, tmp_path / "gan"))


def test_resume_continues_the_step_count(tiny_dataset, embedder_run, tmp_path):
    out = tmp_path / "gan"
    train(config("gan", tiny_dataset, out, f"voice_encoder={embedder_run}", "steps=3"))
    first = Voice2Face.from_pretrained(out).generator.state_dict()["net.0.weight"].clone()
    summary = train(config("gan", tiny_dataset, out, f"voice_encoder={embedder_run}", "steps=5"))
    assert summary["steps"] == 5
    assert [int(r["step"]) for r in losses(out)] == [1, 2, 3, 4, 5]
    assert json.loads((out / "config.json").read_text())["training"]["steps"] == 5
    assert not torch.equal(first, Voice2Face.from_pretrained(out).generator.state_dict()["net.0.weight"])


def test_seeded_runs_repeat(tiny_dataset, embedder_run, tmp_path):
    for name in ("a", "b"):
        train(config("gan", tiny_dataset, tmp_path / name, f"voice_encoder={embedder_run}", "steps=2"))
    a = Voice2Face.from_pretrained(tmp_path / "a").generator.state_dict()
    b = Voice2Face.from_pretrained(tmp_path / "b").generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_settings_from_json_and_command_line(tmp_path):
    file = tmp_path / "run.json"
    file.write_text(json.dumps({"steps": 123, "model": {"generator": {"channels": [64, 32, 16, 8, 4]}}}))
    cfg = load_config("paper", str(file), ["batch_size=7", "betas=[0.1,0.2]"])
    assert cfg.steps == 123 and cfg.batch_size == 7 and cfg.betas == (0.1, 0.2)
    assert cfg.model.generator.channels == (64, 32, 16, 8, 4) and cfg.lr == 2e-4
    with pytest.raises(Voice2FaceError, match="Unknown setting"):
        load_config("paper", None, ["stpes=3"])
    with pytest.raises(Voice2FaceError, match="all 0"):
        load_config("paper", None, ["adversarial_weight=0", "identity_weight=0"])


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_replicas_identical(tiny_dataset, embedder_run, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "voice2face", "train", "--stage", "gan", "--preset", "cpu-tiny", "--data", str(tiny_dataset),
         "--out", str(out), "--set", "steps=2", "batch_size=4", "crop_min=40", "crop_max=80", "checkpoint_every=1",
         f"voice_encoder={embedder_run}"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["steps"] == 2 and training["world_size"] == 2
    assert training["replicas_in_sync"] is True


def test_train_cli_reports_bad_data_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "voice2face", "train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "No dataset directory" in proc.stderr and "Traceback" not in proc.stderr


def small_gan_model():
    """Narrow networks on 16-d voice embeddings: a gan_step in milliseconds."""
    from voice2face.models import FaceEmbedderConfig, GeneratorConfig, ModelConfig, VoiceEncoderConfig

    return ModelConfig(voice=VoiceEncoderConfig(embedding_dim=16), generator=GeneratorConfig(channels=(32, 16, 8, 8, 8)),
                       face=FaceEmbedderConfig(channels=(8, 8, 16, 16, 16)))  # fmt: skip


def test_gan_step_loss_weights():
    from voice2face.models import FaceCritic, Generator
    from voice2face.training.config import TrainConfig
    from voice2face.training.gan import gan_step

    torch.manual_seed(0)
    model = small_gan_model()
    embedding, real, labels = torch.nn.functional.normalize(torch.randn(4, 16), dim=1), torch.rand(4, 3, 64, 64) * 2 - 1, torch.arange(4)

    def one_step(**weights):
        torch.manual_seed(1)
        config = TrainConfig(model=model, **weights)
        g, c = Generator(model.generator, 16), FaceCritic(model, 4)
        opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(c.parameters())
        return gan_step(g, c, opt_g, opt_d, embedding, real, labels, config), g

    paper, g_paper = one_step()
    assert "g_rec" not in paper
    weighted, g_weighted = one_step(reconstruction_weight=1.0, adversarial_weight=0.0, identity_weight=0.0)
    assert set(weighted) == {"g_rec"} and weighted["g_rec"] > 0  # the critic, unused, is skipped
    mixed, _ = one_step(reconstruction_weight=1.0, adversarial_weight=0.01, identity_weight=0.0)
    assert mixed["g_rec"] > 0 and mixed["d_real"] == pytest.approx(paper["d_real"])
    assert not torch.equal(g_paper.net[0].weight, g_weighted.net[0].weight)  # the generator followed other losses


def test_attribute_group_faces_average_each_group(tmp_path):
    from PIL import Image

    from voice2face.datasets.paired import Identity, load_face
    from voice2face.training.gan import attribute_group_faces

    def identity(name: str, gender: str | None, band: str, shade: int) -> Identity:
        (tmp_path / name).mkdir()
        faces = []
        for n, value in enumerate((shade, shade + 40)):
            image = np.full((64, 64, 3), value, np.uint8)
            image[:, :8] = 255  # a bright left edge: the target must be mirror-symmetric
            Image.fromarray(image).save(tmp_path / name / f"{n}.png")
            faces.append(tmp_path / name / f"{n}.png")
        return Identity(name, [], faces, gender, {"age_band": band})

    people = [identity("a", "m", "young", 0), identity("b", "m", "young", 100), identity("c", "f", "young", 200), identity("d", "m", "older", 10)]
    by_gender = attribute_group_faces(people, ["gender"])
    assert by_gender.shape == (4, 3, 64, 64)
    males = torch.stack([load_face(p) for i in (0, 1, 3) for p in people[i].faces]).mean(0)
    assert torch.allclose(by_gender[0], by_gender[1]) and torch.allclose(by_gender[0], by_gender[3])
    assert torch.allclose(by_gender[0, :, :, 32:40], males[:, :, 32:40], atol=1e-5)  # away from the edges
    assert torch.allclose(by_gender[0], by_gender[0].flip(-1))
    assert not torch.allclose(by_gender[0], by_gender[2])
    by_gender_and_age = attribute_group_faces(people, ["gender", "age_band"])
    assert torch.allclose(by_gender_and_age[0], by_gender_and_age[1]) and not torch.allclose(by_gender_and_age[0], by_gender_and_age[3])
    with pytest.raises(Voice2FaceError, match="needs metadata"):
        attribute_group_faces([Identity("x", [], people[0].faces)], ["gender"])


def test_attribute_weight_pulls_faces_to_their_group():
    from voice2face.models import FaceCritic, Generator
    from voice2face.training.config import TrainConfig
    from voice2face.training.gan import gan_step

    torch.manual_seed(0)
    model = small_gan_model()
    embedding = torch.nn.functional.normalize(torch.randn(4, 16), dim=1)
    targets = torch.stack([torch.full((3, 64, 64), 0.8)] * 2 + [torch.full((3, 64, 64), -0.8)] * 2)
    config = TrainConfig(model=model, adversarial_weight=0.0, identity_weight=0.0, attribute_weight=1.0, noise_std=0.0)
    g, c = Generator(model.generator, 16), FaceCritic(model, 4)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-2)
    history = [gan_step(g, c, opt_g, None, embedding, targets, torch.arange(4), config, targets)["g_attr"] for _ in range(60)]
    assert history[-1] < 0.5 * history[0]
    with torch.no_grad():
        faces = g(embedding).mean(dim=(1, 2, 3))
    assert faces[:2].min() > faces[2:].max()  # each voice's face moved towards its own group's


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voice2face", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cache_first_workflow_for_both_encoders(tiny_dataset, embedder_run, tmp_path, capsys):
    """The README's cache-first commands: the cache is built for the encoder that will read it."""
    ge2e_cache, paper_cache = tmp_path / "ge2e-cache", tmp_path / "paper-cache"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return run_main(capsys, *args)

    assert cli("cache", "--data", str(tiny_dataset), "--out", str(ge2e_cache), "--voice-encoder", "ge2e-pretrained").returncode == 0
    assert cli("cache", "--data", str(tiny_dataset), "--out", str(paper_cache)).returncode == 0
    tiny = ["--preset", "cpu-tiny", "--set", "steps=2", "batch_size=4", "crop_min=40", "crop_max=80"]
    for cache, encoder in ((ge2e_cache, "ge2e-pretrained"), (paper_cache, str(embedder_run))):
        proc = cli("train", "--stage", "gan", "--data", str(cache), "--out", str(tmp_path / cache.name / "run"), *tiny, f"voice_encoder={encoder}")
        assert proc.returncode == 0, proc.stderr[-2000:]
    wrong = cli("train", "--stage", "gan", "--data", str(paper_cache), "--out", str(tmp_path / "wrong"), *tiny, "voice_encoder=ge2e-pretrained")
    assert wrong.returncode == 2 and "built for another front end" in wrong.stderr and "--voice-encoder ge2e-pretrained" in wrong.stderr


def test_export_keeps_the_inference_networks_only(gan_run, tmp_path, speech_wav):
    assert run_cli("export", str(gan_run), str(tmp_path / "small"), "--fp16").returncode == 0
    small = Voice2Face.from_pretrained(tmp_path / "small")
    assert small.info.networks == ("voice_encoder", "generator") and small.info.weights_dtype == "float16"
    assert sorted(p.name for p in (tmp_path / "small").iterdir()) == ["config.json", "generator.safetensors", "voice_encoder.safetensors"]
    full, half = Voice2Face.from_pretrained(gan_run)(speech_wav), small(speech_wav)
    assert np.abs(np.asarray(full, float) - np.asarray(half, float)).mean() < 2  # grey levels


def test_processed_layout_reads_the_authors_release(tiny_dataset, tmp_path):
    """log-mel .npy per utterance under a folder per VoxCeleb id, faces per name, and the meta file."""
    from voice2face.audio.front_end import FrontEndConfig
    from voice2face.datasets.paired import voice_features

    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    for k, name in enumerate(["Alice", "Bruno"]):
        vox = f"id1000{k}"
        meta.append(f"{vox}\t{name}\t{'fm'[k]}\tUK\tdev")
        (tmp_path / "fbank" / vox).mkdir(parents=True)
        features = voice_features(tiny_dataset / name / "voice" / "0.wav", FrontEndConfig())
        np.save(tmp_path / "fbank" / vox / "00001.npy", features.T.numpy())
        (tmp_path / "faces" / name).mkdir(parents=True)
        (tmp_path / "faces" / name / "1.png").write_bytes((tiny_dataset / name / "face" / "0.png").read_bytes())
    (tmp_path / "meta.csv").write_text("\n".join(meta) + "\n")
    identities = load_identities(tmp_path / "fbank", meta=tmp_path / "meta.csv", faces=tmp_path / "faces")
    assert [i.name for i in identities] == ["Alice", "Bruno"] and identities[1].gender == "m"
    assert voice_features(identities[0].voices[0], FrontEndConfig()).shape[0] == 64


@pytest.mark.parametrize("stage", ["embedder", "grader"])
def test_every_stage_resumes_where_it_stopped(tiny_dataset, tmp_path, stage):
    train(config(stage, tiny_dataset, tmp_path / "run", "steps=2"))
    summary = train(config(stage, tiny_dataset, tmp_path / "run", "steps=3"))
    assert summary["steps"] == 3 and [int(r["step"]) for r in losses(tmp_path / "run")] == [1, 2, 3]


def test_generator_input_is_standardised_with_the_training_voices(tiny_dataset, embedder_run, tmp_path):
    """The route that built the shipped model: precomputed crops, then input statistics fitted on them."""
    out = tmp_path / "gan"
    train(config("gan", tiny_dataset, out, f"voice_encoder={embedder_run}", "steps=2", "embedding_crops=2",
                 "model.generator.standardise_input=true", "adversarial_weight=0", "identity_weight=0", "reconstruction_weight=1"))  # fmt: skip
    stats = Voice2Face.from_pretrained(out).generator.standardise
    # unit voice embeddings of 8 speakers: a clear common direction and a spread well above the 1e-4 floor
    assert 0.2 < stats.input_mean.norm() < 1.0
    assert (stats.input_std > 1e-3).all() and (stats.input_std < 1).all()


def test_speaker_top1_counts_the_right_answers(tiny_dataset):
    from voice2face.training.embedder import speaker_top1

    identities = load_identities(tiny_dataset)[:4]

    class Oracle(torch.nn.Module):
        """Names the speaker from the clip's length, which differs per speaker here; or always speaker 0."""

        def __init__(self, right: bool):
            super().__init__()
            self.encoder, self.right = torch.nn.Identity(), right
            self.encoder.front_end = FrontEndConfig()
            self.lengths = {}

        def forward(self, features, lengths=None):
            n = features.shape[-1]
            label = self.lengths.setdefault(n, len(self.lengths)) if self.right else 0
            return torch.nn.functional.one_hot(torch.tensor([label]), 12).float()

    one_each = [dataclasses.replace(i, voices=i.voices[:1]) for i in identities]
    assert speaker_top1(Oracle(True), one_each, torch.device("cpu")) == 1.0
    assert speaker_top1(Oracle(False), one_each, torch.device("cpu")) == 0.25
