"""Latency of one app request (faces for 1, 2, 4, 8 s and the whole clip) on CPU.

    python benchmarks/bench_inference.py [--checkpoint DIR] [--threads N]

Prints the median time of each stage for 10 s and 60 s clips, the whole
5-length request, and the same request done the naive way (one forward pass
per length) as a ratio; then the speech check (Silero VAD) as we run it, a
window per ONNX Runtime call, against Silero's TorchScript model fed 32 ms at
a time; one face through OpenVINO in f32 against as served (bf16, INT8 where the
CPU has them), and through graphs that take any number of faces, or keep MobileStyleGAN's
order of wavelet bands, against as served; the served request with the same clip again against clips of lengths not
heard before, as visitors' are; CAM++'s masked layers with their gates computed once a segment (as served) against
gated frame by frame, as the reference model writes them. Without --checkpoint it uses a randomly initialised
model of the paper's full widths, so timings do not depend on what is shipped.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import warnings
from functools import lru_cache
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from common import clips_of_new_lengths, median_seconds, peak_rss_mib, reference_seconds, served_with_faces_in, speech_clip

from voice2face.audio import speech_check
from voice2face.audio.front_end import frame_features, prepare_utterance, remove_silence
from voice2face.audio.load import load_audio
from voice2face.checkpoint import CheckpointInfo, build_network, load_network
from voice2face.images import DISPLAY_SIZE
from voice2face.lengths import DEFAULT_DURATIONS, distinct_cuts, plan_cuts
from voice2face.models import ModelConfig, StyleVoiceMap, campplus, stylegan_openvino
from voice2face.models.openvino import run_compiled
from voice2face.models.stylegan import STYLE_DIM
from voice2face.models.stylegan_openvino import OpenVINOSynthesis
from voice2face.paths import GE2E_CHECKPOINT
from voice2face.pipeline import Voice2Face

#: How the server builds its face graphs: the comparisons in `main` change one thing of it.
SERVED_GRAPH = stylegan_openvino.openvino_graph


def paper_model() -> Voice2Face:
    torch.manual_seed(0)
    info = CheckpointInfo(model=ModelConfig())
    return Voice2Face(build_network(info, "voice_encoder"), build_network(info, "generator"), info)


def naive_request(model: Voice2Face, path: Path) -> None:
    """What a first version would do: the whole pipeline again for every length."""
    for d in DEFAULT_DURATIONS:
        model.faces_for_durations(path, (d,))


def torchscript_speech_probability(samples) -> float:
    """The speech check the way Silero's README streams it: TorchScript, one 32 ms frame per call
    (the same windows as ours, heard as recorded, which is all ours needs for speech)."""
    model = torchscript_silero()
    chunk, chunks = speech_check.CHUNK, speech_check.CHUNKS_PER_SEGMENT
    count = max(1, min(speech_check.SEGMENTS, len(samples) // (chunks * chunk)))
    starts = np.linspace(0, len(samples) - chunks * chunk, count).astype(int)
    x = torch.from_numpy(np.stack([samples[s : s + chunks * chunk] for s in starts]).astype(np.float32))
    with torch.inference_mode():
        model.reset_states()
        probs = torch.stack([model(x[:, i * chunk : (i + 1) * chunk], 16000).reshape(-1) for i in range(chunks)], 1)
    return float(np.median(probs[:, speech_check.WARM_UP_CHUNKS :].numpy()))


@lru_cache(maxsize=1)
def torchscript_silero() -> torch.jit.ScriptModule:
    spec = importlib.util.find_spec("silero_vad")
    with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(Path(spec.origin).parent / "data" / "silero_vad.jit"), map_location="cpu").eval()


@torch.inference_mode()
def naive_forwards(model: Voice2Face, features: torch.Tensor, cuts) -> None:
    """Front end once, then one embedder and one generator pass per length."""
    for cut in cuts:
        model.generator(model.voice_encoder(features[None, :, : cut.frames]))


def face_rendering(model: Voice2Face, embeddings: torch.Tensor, repeats: int) -> None:
    """The StyleGAN's 1024-px faces: how PyTorch draws them (one at a time, channels-last) against a batch,
    against the default memory layout, against our network compiled by OpenVINO, and against
    MobileStyleGAN's own OpenVINO graph when installed; then the small head's 256-px faces (what the
    page draws) against the 1024-px ones, in PyTorch and OpenVINO."""
    synthesis = model.generator.synthesis
    with torch.inference_mode():
        styles = model.generator.style(model.generator.read(embeddings))
        one_by_one = median_seconds(lambda: [synthesis(s[None]) for s in styles], repeats)
        batched = median_seconds(lambda: synthesis(styles), repeats)
        plain = copy.deepcopy(synthesis).to(memory_format=torch.contiguous_format)
        contiguous = median_seconds(lambda: [plain(s[None]) for s in styles], repeats)
    n = len(styles)
    compiled = OpenVINOSynthesis(synthesis)
    t_ours_ov = median_seconds(lambda: [compiled(s[None]) for s in styles], repeats)
    print(f"{n} faces at 1024 px: one at a time, channels-last {1000 * one_by_one / n:.0f}ms a face; "
          f"one batch {1000 * batched / n:.0f}ms a face ({batched / one_by_one:.2f}x); "
          f"default layout {1000 * contiguous / n:.0f}ms a face ({contiguous / one_by_one:.2f}x); "
          f"our network compiled by OpenVINO {1000 * t_ours_ov / n:.0f}ms a face ({t_ours_ov / one_by_one:.2f}x)")
    if synthesis.small_head is not None:
        with torch.inference_mode():
            small_torch = median_seconds(lambda: [synthesis(s[None], small=True) for s in styles], repeats)
        small_ov = median_seconds(lambda: [compiled(s[None], small=True) for s in styles], repeats)
        print(f"{n} faces at 256 px through the small head: PyTorch {1000 * small_torch / n:.0f}ms a face "
              f"({one_by_one / small_torch:.2f}x faster than 1024 px); OpenVINO in f32 {1000 * small_ov / n:.0f}ms "
              f"a face ({t_ours_ov / small_ov:.2f}x faster than 1024 px through OpenVINO)")
    if importlib.util.find_spec("openvino") and importlib.util.find_spec("random_face"):
        import openvino as ov

        from voice2face.models.stylegan_import import packaged_ir_dir

        compiled = ov.Core().compile_model(str(packaged_ir_dir() / "SynthesisNetwork.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        rows = styles.numpy()
        t_ov = median_seconds(lambda: [compiled({"style": r[None]}) for r in rows], repeats)
        print(f"MobileStyleGAN's own OpenVINO graph (f32), one at a time: {1000 * t_ov / n:.0f}ms a face "
              f"({t_ov / one_by_one:.2f}x ours)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to time (default: random paper-width model)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = Voice2Face.from_pretrained(args.checkpoint) if args.checkpoint else paper_model()
    # the table times PyTorch, as the CLI and the library run; face_rendering below adds OpenVINO, as the app runs
    fe = model.front_end
    print(f"model: {args.checkpoint or 'random init, paper widths'}; torch {torch.__version__}; {args.threads} threads")
    print(f"{'clip':>5} {'decode':>8} {'VAD':>8} {'features':>9} {'embed':>8} {'generate':>9} "
          f"{'request':>9} {'naive fwd':>10} {'ratio':>6} {'naive all':>10} {'ratio':>6}")
    for seconds in (10, 60):
        path = speech_clip(seconds)
        audio = load_audio(path)
        speech = remove_silence(audio.samples, fe)
        features = frame_features(speech, fe)
        cuts = plan_cuts(features.shape[-1], DEFAULT_DURATIONS, fe)
        with torch.inference_mode():
            embeddings = model.embed_cuts(features, cuts)
            t_embed = median_seconds(lambda: model.embed_cuts(features, cuts), args.repeats)
            t_gen = median_seconds(lambda: model.render(embeddings), args.repeats)
        t_decode = median_seconds(lambda: load_audio(path), args.repeats)
        t_vad = median_seconds(lambda: remove_silence(audio.samples, fe), args.repeats)
        t_feat = median_seconds(lambda: frame_features(speech, fe), args.repeats)
        t_request = median_seconds(lambda: model.faces_for_durations(path), args.repeats)
        t_naive_fwd = t_decode + t_vad + t_feat + median_seconds(lambda: naive_forwards(model, features, cuts), args.repeats)
        t_naive_all = median_seconds(lambda: naive_request(model, path), max(3, args.repeats // 2))
        ms = lambda t: f"{1000 * t:7.1f}ms"  # noqa: E731
        print(f"{seconds:>4}s {ms(t_decode):>8} {ms(t_vad):>8} {ms(t_feat):>9} {ms(t_embed):>8} {ms(t_gen):>9} "
              f"{ms(t_request):>9} {ms(t_naive_fwd):>10} {t_naive_fwd / t_request:5.2f}x "
              f"{ms(t_naive_all):>10} {t_naive_all / t_request:5.2f}x")
        if seconds == 10:
            check, ten_second_embeddings = speech, embeddings
    if isinstance(model.generator, StyleVoiceMap):
        face_rendering(model, ten_second_embeddings, max(3, args.repeats // 2))
        clip = speech_clip(10)
        t_torch = median_seconds(lambda: model.faces_for_durations(clip, size=DISPLAY_SIZE), args.repeats)
        model.serve_with_openvino()
        t_served = median_seconds(lambda: model.faces_for_durations(clip, size=DISPLAY_SIZE), args.repeats)
        t_full = median_seconds(lambda: model.faces_for_durations(clip, size=None), max(3, args.repeats // 2))
        t_voice = median_seconds(lambda: voice_side(model, clip), args.repeats)
        # the voice side with the GE2E encoder that the default model used before CAM++ (checkpoints/ge2e); its
        # embeddings do not fit this model's heads, so the voice side alone is timed for both
        ge2e = Voice2Face(load_network(GE2E_CHECKPOINT, "voice_encoder"), model.generator, model.info)
        t_ge2e = median_seconds(lambda: voice_side(ge2e, clip), args.repeats)
        print(f"10 s clip, 5 lengths, {DISPLAY_SIZE} px, as the app serves it (OpenVINO): {1000 * t_served:.0f}ms "
              f"(voice side: decode, speech check, features, embedding {1000 * t_voice:.0f}ms); PyTorch {1000 * t_torch:.0f}ms "
              f"({t_torch / t_served:.2f}x); the same at 1024 px (drawn in full, as the page did before) "
              f"{1000 * t_full:.0f}ms ({t_full / t_served:.2f}x)")
        fresh = iter(clips_of_new_lengths(clip, args.repeats + 1))
        t_same, t_new = medians_in_turn([lambda: model.faces_for_durations(clip, size=DISPLAY_SIZE),
                                         lambda: model.faces_for_durations(next(fresh), size=DISPLAY_SIZE)], args.repeats)  # fmt: skip
        print(f"the served request again with the same 10 s clip / with a clip of a length not heard before (as each visitor's "
              f"is), in turn: {1000 * t_same:.0f} / {1000 * t_new:.0f}ms ({t_new / t_same:.2f}x)")
        print(f"voice side of that request with {model.info.model.voice.backend}: {1000 * t_voice:.0f}ms; with the GE2E encoder "
              f"(checkpoints/ge2e): {1000 * t_ge2e:.0f}ms ({t_voice / t_ge2e:.2f}x GE2E's)")
        if isinstance(model.voice_encoder, campplus.CAMPPlusEncoder):
            print(f"CAM++'s gates computed once a segment (as served) / frame by frame in every layer, in turn: "
                  f"{gates_both_ways(model, clip, args.repeats)}")
        t_first = median_seconds(lambda: next(model.stream(clip, size=DISPLAY_SIZE)), args.repeats)
        t_first_after_all = median_seconds(lambda: first_face_after_every_length(model, clip), args.repeats)
        reference = reference_seconds()
        print(f"first face of that request (the whole clip's): {1000 * t_first:.0f}ms as drawn on hearing it; "
              f"{1000 * t_first_after_all:.0f}ms once every length is heard, as before ({t_first_after_all / t_first:.2f}x)")
        print(f"reference conv stack (six 3x3 convs, 64 channels, 128x128, 2 threads): {1000 * reference:.1f}ms; the served "
              f"request {t_served / reference:.1f}x it, its first face {t_first / reference:.1f}x")
        in_f32, as_served = served_with_faces_in(Voice2Face.from_pretrained(args.checkpoint), "f32"), Voice2Face.from_pretrained(args.checkpoint)
        as_served.serve_with_openvino()
        print(f"one face through OpenVINO in f32 / as served ({stylegan_openvino.GRAPH_PRECISION}, each only where the CPU has "
              f"it), drawn in turn: {one_face_both_ways(in_f32, as_served, clip, args.repeats)}")
        del in_f32
        for before, build in (("take any number of faces", graph_for_any_number_of_faces),
                              ("keep MobileStyleGAN's order of wavelet bands", graph_in_mobilestylegan_band_order)):  # fmt: skip
            other = served_with_face_graphs_built_by(Voice2Face.from_pretrained(args.checkpoint), build)
            print(f"one face through face graphs that {before} (as before) / as served, drawn in turn: "
                  f"{one_face_both_ways(other, as_served, clip, args.repeats)}")
            del other
        del as_served
    t_ours = median_seconds(lambda: speech_check.speech_probability(check), args.repeats)
    t_script = median_seconds(lambda: torchscript_speech_probability(check), args.repeats)
    same = abs(speech_check.speech_probability(check) - torchscript_speech_probability(check)) < 1e-4
    print(f"speech check (10 s clip): ONNX sequence {1000 * t_ours:.1f}ms, TorchScript frame by frame "
          f"{1000 * t_script:.1f}ms, ratio {t_script / t_ours:.2f}x; same probability: {same}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    print("request = faces_for_durations for 1, 2, 4, 8 s and whole clip (decode to images);")
    print("naive fwd = same front end, one forward per length; naive all = whole pipeline per length;")
    print("ratio = naive time / our time (above 1: ours is faster)")


def one_face_both_ways(other: Voice2Face, served: Voice2Face, clip, repeats: int) -> str:
    """One face, and the whole request at 256 px, drawn by each model in turn (so both see the machine alike): medians
    and ratio."""
    row = other.plan(clip).readings.row(0)
    figures = []
    for size in (DISPLAY_SIZE, None):
        other_s, served_s = medians_in_turn([lambda m=m: m.draw(row, size, m.draws_small(size)) for m in (other, served)],  # noqa: B023
                                            3 * repeats if size else max(3, repeats // 2))  # fmt: skip
        figures.append(f"{size or 1024} px {1000 * other_s:.0f} / {1000 * served_s:.0f}ms ({other_s / served_s:.2f}x)")
    other_s, served_s = medians_in_turn([lambda m=m: m.faces_for_durations(clip, size=DISPLAY_SIZE) for m in (other, served)], repeats)
    figures.append(f"the whole request {1000 * other_s:.0f} / {1000 * served_s:.0f}ms ({other_s / served_s:.2f}x)")
    return ", ".join(figures)


def served_with_face_graphs_built_by(model: Voice2Face, build) -> Voice2Face:
    """`model` served through face graphs made by `build` in place of `stylegan_openvino.openvino_graph`: both graphs
    made now (the full-size one would otherwise be made when first drawn, by the served builder)."""
    with mock.patch.object(stylegan_openvino, "openvino_graph", build):
        model.serve_with_openvino()
        model.generator.synthesis.graph(small=False)
    return model


def graph_for_any_number_of_faces(*args, **kwargs):
    """A face graph as served, its styles' batch left open, as the graphs were before they took one face."""
    import openvino as ov

    graph, noises = SERVED_GRAPH(*args, **kwargs)
    graph.reshape({graph.inputs[k].get_any_name(): ov.PartialShape([-1, STYLE_DIM]) for k in (0, 1)})
    return graph, noises


def graph_in_mobilestylegan_band_order(*args, **kwargs):
    """A face graph as served but traced from the network as it is, its wavelet bands in MobileStyleGAN's order."""
    with mock.patch.object(stylegan_openvino, "interleaved_bands", lambda synthesis: synthesis):
        return SERVED_GRAPH(*args, **kwargs)


def medians_in_turn(functions: list, repeats: int) -> list[float]:
    """Each function called once (a warm-up: it compiles what it needs), then all in turn `repeats` times: their medians."""
    for function in functions:
        function()
    times = [[median_seconds(function, 1, warmup=0) for function in functions] for _ in range(repeats)]
    return [float(t) for t in np.median(np.array(times), axis=0)]


def gated_frame_by_frame(layer: campplus.MaskedTDNN, x: torch.Tensor, segments) -> torch.Tensor:
    """A masked layer as 3D-Speaker's CAM++ writes it: its segments' means pooled and repeated to every frame, in every
    layer, and the gate computed for each frame (what our graph did before it gated once a segment)."""
    x = layer.mid(layer.bottleneck(layer.pre(x)))
    n = x.shape[-1]
    short = (campplus.SEGMENT - n % campplus.SEGMENT) % campplus.SEGMENT
    sums = F.pad(x, (0, short)).unflatten(-1, (-1, campplus.SEGMENT)).sum(-1)
    counts = torch.full((sums.shape[-1],), float(campplus.SEGMENT))
    counts[-1] = campplus.SEGMENT - short
    context = x.mean(-1, keepdim=True) + (sums / counts).repeat_interleave(campplus.SEGMENT, dim=-1)[..., :n]
    return layer.local(x) * torch.sigmoid(layer.context2(F.relu(layer.context1(context))))


def gates_both_ways(model: Voice2Face, clip, repeats: int) -> str:
    """The voice side and the whole served request with CAM++'s graph as served, and with one traced from
    `gated_frame_by_frame`, in turn (`model` serves through OpenVINO already)."""
    import openvino as ov

    encoder = model.voice_encoder
    with mock.patch.object(campplus.MaskedTDNN, "forward", gated_frame_by_frame):
        graph = campplus.frame_level_graph(encoder)
    frame_by_frame = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": campplus.VOICE_PRECISION})
    served = encoder.compiled_frames

    def with_graph(graph, work):
        encoder.compiled_frames = graph
        work()

    figures = []
    for name, work in (("voice side", lambda: voice_side(model, clip)), ("request", lambda: model.faces_for_durations(clip, size=DISPLAY_SIZE))):
        ours, theirs = medians_in_turn([lambda: with_graph(served, work),  # noqa: B023
                                        lambda: with_graph(lambda f: run_compiled(frame_by_frame, [f.float().contiguous().numpy()]), work)],  # noqa: B023
                                       repeats)  # fmt: skip
        figures.append(f"{name} {1000 * ours:.0f} / {1000 * theirs:.0f}ms ({theirs / ours:.2f}x)")
    encoder.compiled_frames = served
    return ", ".join(figures)


def first_face_after_every_length(model: Voice2Face, clip):
    """The whole clip's face the way `stream` drew it before issue 34: every length heard first."""
    result = model.plan(clip)
    return model.draw(result.readings.row(result.longest), DISPLAY_SIZE, model.draws_small(DISPLAY_SIZE))


def voice_side(model: Voice2Face, clip) -> torch.Tensor:
    """What a request does before the heads read anything: decode, speech check, features, and the embeddings
    of every length."""
    utterance = prepare_utterance(clip, model.front_end)
    cuts = distinct_cuts(plan_cuts(utterance.features.shape[-1], DEFAULT_DURATIONS, model.front_end), model.front_end.hop_ms)
    with torch.inference_mode():
        return model.embed_cuts(utterance.features, cuts)


if __name__ == "__main__":
    main()
