"""``pxc explain``: where the bits go — a heat map of every pixel's cost, and totals.

The costs are −log2 of the exact integer probabilities the coder uses (``neural.pixel_costs``),
so the map and the totals add up to the file's payload.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

#: Colour map anchors (dark = cheap, bright = expensive), interpolated linearly.
_ANCHORS = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)], dtype=np.float64)


def colour_map(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → uint8 RGB."""
    x = np.clip(v, 0, 1) * (len(_ANCHORS) - 1)
    i = np.minimum(x.astype(int), len(_ANCHORS) - 2)
    f = (x - i)[..., None]
    return ((1 - f) * _ANCHORS[i] + f * _ANCHORS[i + 1]).round().astype(np.uint8)


@dataclass
class Explanation:
    """Per-subpixel costs (H, W, C) in bits and the summaries derived from them."""

    costs: np.ndarray
    channel_names: tuple[str, ...]

    def per_channel(self) -> dict[str, float]:
        """Bits per subpixel of each channel."""
        return {n: float(self.costs[..., c].mean()) for c, n in enumerate(self.channel_names)}

    def per_region(self, grid: int = 3) -> np.ndarray:
        """(grid, grid) bits per subpixel of the image cut into a grid of regions."""
        h, w, _ = self.costs.shape
        ys = np.linspace(0, h, grid + 1).astype(int)
        xs = np.linspace(0, w, grid + 1).astype(int)
        return np.array([[self.costs[ys[i]:max(ys[i + 1], ys[i] + 1), xs[j]:max(xs[j + 1], xs[j] + 1)].mean()
                          for j in range(grid)] for i in range(grid)])

    def picture(self, image: np.ndarray, scale_max: float | None = None) -> Image.Image:
        """The image, its heat map of bits per pixel, and a labelled colour scale, side by side."""
        per_pixel = self.costs.sum(-1)
        top = scale_max or max(float(np.percentile(per_pixel, 99)), 1e-6)
        heat = Image.fromarray(colour_map(per_pixel / top))
        h, w = per_pixel.shape
        bar_w, pad = 70, 10
        out = Image.new("RGB", (2 * w + bar_w + 3 * pad, max(h, 160) + 2 * pad), "white")
        out.paste(Image.fromarray(image if image.ndim == 3 else np.dstack([image] * 3)), (pad, pad))
        out.paste(heat, (w + 2 * pad, pad))
        d = ImageDraw.Draw(out)
        x0, label, bar_h = 2 * w + 3 * pad, 16, max(h, 160) - 16
        d.text((x0, pad), "bits/px", fill="black")
        ramp = colour_map(np.linspace(1, 0, bar_h)[:, None].repeat(14, 1))
        out.paste(Image.fromarray(ramp), (x0, pad + label))
        for k in range(5):
            y = pad + label + round(k * (bar_h - 1) / 4)
            d.line([(x0 + 14, y), (x0 + 18, y)], fill="black")
            d.text((x0 + 20, y - 6), f"{top * (1 - k / 4):.1f}", fill="black")
        return out


def report(e: Explanation, width: int, height: int) -> str:
    """Terminal summary: totals per channel and per region."""
    lines = [f"{width}×{height}: {e.costs.mean():.3f} bits per subpixel, {e.costs.sum() / 8:,.0f} bytes of model code"]
    lines.append("per channel: " + ", ".join(f"{n} {v:.3f}" for n, v in e.per_channel().items()))
    lines.append("per region (bits per subpixel, image cut 3×3):")
    for row in e.per_region(3):
        lines.append("  " + "  ".join(f"{v:6.3f}" for v in row))
    return "\n".join(lines)
