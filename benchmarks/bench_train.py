"""GAN training throughput on CPU at batch 64, paper widths: the straightforward loop against ours.

    python benchmarks/bench_train.py [--steps 6] [--batch-size 64]

straightforward: features decoded from audio in the training process, each step;
    the face embedder run separately for every head (real for D, fake for D,
    real again for the identity classifier; fake twice for the generator).
ours: features from the `cache` command (memory-mapped .npy), loaded by
    DataLoader workers in parallel with the step; one face-embedder pass feeds
    both heads (`voice2face.training.gan.gan_step`).
Prints samples per second for each and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import paired_dataset, peak_rss_mib

from voice2face.datasets.paired import CropCollate, VoiceFaceDataset, build_feature_cache, load_identities
from voice2face.models import FaceCritic, Generator, VoiceEmbedder
from voice2face.training.config import TrainConfig
from voice2face.training.gan import gan_step, with_noise
from voice2face.training.loop import Batches, Runtime


def straightforward_step(encoder, generator, critic, opt_g, opt_d, batch, config) -> None:
    features, lengths, real, labels = batch
    with torch.no_grad():
        embedding = encoder(features, lengths)
    fake = generator(with_noise(embedding, config.noise_std))
    ones, zeros = torch.ones(len(real)), torch.zeros(len(real))
    d_loss = (
        F.binary_cross_entropy_with_logits(critic.discriminator(critic.embedder(real)), ones)
        + F.binary_cross_entropy_with_logits(critic.discriminator(critic.embedder(fake.detach())), zeros)
        + F.cross_entropy(critic.classifier(critic.embedder(real)), labels)
    )
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = F.binary_cross_entropy_with_logits(critic.discriminator(critic.embedder(fake)), ones) + F.cross_entropy(
        critic.classifier(critic.embedder(fake)), labels
    )
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()


def our_step(encoder, generator, critic, opt_g, opt_d, batch, config) -> None:
    features, lengths, real, labels = batch
    with torch.no_grad():
        embedding = encoder(features, lengths)
    gan_step(generator, critic, opt_g, opt_d, embedding, real, labels, config)


def samples_per_second(step_fn, data_root: Path, config: TrainConfig, steps: int) -> float:
    torch.manual_seed(0)
    identities = load_identities(data_root)
    encoder = VoiceEmbedder().eval()
    generator, critic = Generator(), FaceCritic(config.model, len(identities))
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    batches = Batches(VoiceFaceDataset(identities, config.front_end), config, Runtime(), CropCollate(config.crop_min, config.crop_max))
    step_fn(encoder, generator, critic, opt_g, opt_d, next(batches), config)  # warm-up (and worker start)
    start = time.perf_counter()
    for _ in range(steps):
        step_fn(encoder, generator, critic, opt_g, opt_d, next(batches), config)
    elapsed = time.perf_counter() - start
    batches.close()
    return steps * config.batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = paired_dataset(Path(tmp) / "raw")
        cached = build_feature_cache(load_identities(raw), Path(tmp) / "cache", TrainConfig().front_end)
        plain = TrainConfig(batch_size=args.batch_size, num_workers=0)
        ours = TrainConfig(batch_size=args.batch_size, num_workers=args.workers)
        slow = samples_per_second(straightforward_step, raw, plain, args.steps)
        fast = samples_per_second(our_step, cached, ours, args.steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, paper widths, {args.steps} timed steps")
    print(f"straightforward loop (decode each step, face embedder per head): {slow:6.1f} samples/s")
    print(f"ours (cached features, {args.workers} loader workers, shared face-embedder pass): {fast:6.1f} samples/s")
    print(f"ratio ours / straightforward: {fast / slow:.2f}x")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
