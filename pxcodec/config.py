"""Architecture hyper-parameters and the causal tap sets shared by the float and integer models.

A tap ``(dy, dx)`` names an input position relative to the output pixel. Every layer reads only
taps that are earlier in raster order (or, after the first layer, the output pixel's own causal
features), which is what makes both the PixelCNN factorisation and the wavefront decoder work.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .errors import UnknownModelError

Tap = tuple[int, int]

#: Taps of every masked 3×3 (type B) trunk layer: the row above and the causal part of this row.
BLOCK_TAPS: tuple[Tap, ...] = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0))

#: Head parameter groups, in output order: mixture logits, means, log-scales, colour coefficients,
#: and (models with ``blend``) how far each mean moves towards the classical prediction.
PARAM_GROUPS: tuple[str, ...] = ("logit", "mean", "logscale", "coef", "blend")

#: The neighbours a neighbour net reads, by name, as (dy, dx), in the order of its features: W, N,
#: NW, NE (reach 1), then WW, NN, NWW, NNW, NNE (reach 2: two straight steps or a knight's move
#: away), then NEE, NNWW, NNEE (reach 3: the rest of the 5 × 5 causal window).
NEIGHBOUR_OFFSETS: dict[str, tuple[int, int]] = {
    "W": (0, -1), "N": (-1, 0), "NW": (-1, -1), "NE": (-1, 1),
    "WW": (0, -2), "NN": (-2, 0), "NWW": (-1, -2), "NNW": (-2, -1), "NNE": (-2, 1),
    "NEE": (-1, 2), "NNWW": (-2, -2), "NNEE": (-2, 2)}

#: How many neighbours a neighbour net of each reach reads (``NEIGHBOUR_OFFSETS``' first ones).
NEIGHBOUR_SIDES: dict[int, int] = {1: 4, 2: 9, 3: 12}


def neighbours_read(reach: int) -> dict[str, tuple[int, int]]:
    """The neighbours (name → (dy, dx)) a neighbour net of ``reach`` reads, in feature order."""
    return dict(list(NEIGHBOUR_OFFSETS.items())[:NEIGHBOUR_SIDES[reach]])


def decoder_holds(dy: int, dx: int, reach_right: int) -> bool:
    """Whether the decoder has neighbour (dy, dx) of a pixel when it decodes it: decoded before,
    by a wavefront whose rows lag by ``reach_right`` + 1 columns (DESIGN C2), and still in its
    cache of three rows (``steps._gather_sides``), where row y + 1 overwrites row y − 2's place
    x + dx that many steps plus dx after the pixel's."""
    lag = reach_right + 1
    return -2 <= dy <= 0 and dx < -lag * dy and (dy > -2 or dx > -lag)

#: The residual stream's grid tops a model may have: 7-bit (the default) or 8-bit
#: (unsigned bytes in the decoder's caches; products with int8 weights stay exact in float32).
STREAM_MAX: tuple[int, ...] = (127, 255)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of one PixelCNN: trunk width, residual blocks, mixture components, first kernel,
    whether its means blend towards a classical prediction (``predictor``), the top of its
    residual stream's integer grid (0…127, or 0…255: a grid twice as fine on the same range),
    the width of each block's inner layer (``hidden``; None: the trunk's width), and whether G's
    and B's mixture weights follow which of R's (and G's) components explain the decoded value
    (``posterior``; ``mixture.posterior_shift``), and the hidden width of the coupling net that
    moves G's and B's parameters by what the channels before them tell (``coupling``; 0: none),
    and the hidden width of the neighbour net that moves every channel's parameters by what the
    pixels around told (``neighbours``; 0: none) and how far it reads (``neighbour_reach``: 1,
    W, N, NW and NE; 2, also WW, NN, NWW, NNW and NNE; 3, also NEE, NNWW and NNEE, the whole
    5 × 5 causal window, for a first kernel of 5: ``NEIGHBOUR_OFFSETS``, each checked against
    ``decoder_holds``)."""

    channels: int = 64
    blocks: int = 4
    components: int = 5
    first_kernel: int = 5
    blend: bool = False
    stream_max: int = STREAM_MAX[0]
    hidden: int | None = None
    posterior: bool = False
    coupling: int = 0
    neighbours: int = 0
    neighbour_reach: int = 1

    def __post_init__(self) -> None:
        if self.stream_max not in STREAM_MAX:
            raise ValueError(f"stream_max must be one of {STREAM_MAX}, not {self.stream_max}")
        if self.hidden == self.channels:  # one way to write each architecture
            object.__setattr__(self, "hidden", None)
        if self.hidden is not None and self.hidden < 1:
            raise ValueError(f"hidden must be a positive width, not {self.hidden}")
        if self.coupling < 0:
            raise ValueError(f"coupling must be a width ≥ 0, not {self.coupling}")
        if self.neighbours < 0:
            raise ValueError(f"neighbours must be a width ≥ 0, not {self.neighbours}")
        if self.neighbour_reach not in NEIGHBOUR_SIDES:
            raise ValueError(f"neighbour_reach must be one of {tuple(NEIGHBOUR_SIDES)}, not {self.neighbour_reach}")
        for name, (dy, dx) in neighbours_read(self.neighbour_reach).items():
            if not decoder_holds(dy, dx, self.reach_right):
                raise ValueError(f"neighbour_reach {self.neighbour_reach} reads {name}, which the decoder does not "
                                 f"have yet where layers read {self.reach_right} column(s) right "
                                 f"(first_kernel {self.first_kernel})")

    @property
    def inner(self) -> int:
        """Channels of each block's inner layer: its masked convolution's outputs, its mix's inputs."""
        return self.hidden or self.channels

    @property
    def groups(self) -> tuple[str, ...]:
        """The head's parameter groups, in output order."""
        return PARAM_GROUPS if self.blend else PARAM_GROUPS[:-1]

    @property
    def first_taps(self) -> tuple[Tap, ...]:
        """Type-A taps of the first layer: all rows above within the kernel, this row's left part."""
        r = self.first_kernel // 2
        return tuple((dy, dx) for dy in range(-r, 1) for dx in range(-r, r + 1) if dy < 0 or dx < 0)

    @property
    def reach_right(self) -> int:
        """Largest column offset to the right that any single layer reads (``r`` in DESIGN C2)."""
        return max(dx for dy, dx in self.first_taps + BLOCK_TAPS if dy < 0)

    @property
    def context_rows(self) -> int:
        """Rows above a pixel that its probabilities can depend on (the band overlap)."""
        return self.first_kernel // 2 + self.blocks

    @property
    def params_per_pixel(self) -> int:
        """Head outputs per pixel: for each of R, G, B and each component, one per group."""
        return 3 * self.components * len(self.groups)

    @property
    def macs_per_pixel(self) -> int:
        """Multiply-accumulates of the network per pixel (the PMF tables are lookups, not MACs),
        the coupling net's included (G's reads one channel's 2K + 1 features, B's two) and the
        neighbour net's (its pixels' three channels' features in, three channels' moves out)."""
        c, p, k = self.channels, self.params_per_pixel, self.components
        first = len(self.first_taps) * 4 * (c + p)
        coupling = self.coupling * (3 * (2 * k + 1) + 2 * 3 * k)
        neighbours = self.neighbours * (NEIGHBOUR_SIDES[self.neighbour_reach] * 3 * (2 * k + 1) + 3 * 3 * k)
        return first + self.blocks * (len(BLOCK_TAPS) + 1) * c * self.inner + c * p + coupling + neighbours

    def to_json(self) -> str:
        """The architecture as weights files store it (``blend``, ``stream_max``, ``hidden``,
        ``posterior``, ``coupling``, ``neighbours`` and ``neighbour_reach`` only where they differ
        from the defaults, so the files of models without them read as they always have)."""
        fields = dataclasses.asdict(self)
        if not self.blend:
            del fields["blend"]
        if self.stream_max == STREAM_MAX[0]:
            del fields["stream_max"]
        if self.hidden is None:
            del fields["hidden"]
        if not self.posterior:
            del fields["posterior"]
        for name in ("coupling", "neighbours"):
            if not fields[name]:
                del fields[name]
        if self.neighbour_reach == 1:
            del fields["neighbour_reach"]
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        """The architecture a weights file stores; one with parts this version does not know
        (a newer model) raises ``UnknownModelError`` naming them."""
        fields = json.loads(text)
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise UnknownModelError(f"the model has parts this version of pxcodec does not know: {', '.join(unknown)}")
        return cls(**fields)
