"""``pxc explain``: the per-pixel costs are the coder's, and the picture and totals show them."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pxcodec import explain, weights
from pxcodec.cli import main
from pxcodec.neural import pixel_costs

from .conftest import FAST, IMAGES, encode, load


def test_costs_add_up_to_the_ideal_code_length(model):
    pixels = load("kodim15-64x48.png")
    costs = pixel_costs(pixels, model)
    assert costs.shape == (48, 64, 3) and (costs > 0).all()
    assert costs.sum() == pytest.approx(encode(pixels, model).ideal_bits, rel=1e-9)


def test_grey_costs_have_one_channel(model):
    assert pixel_costs(load("kodim15-64x48.png")[..., 0], model).shape == (48, 64, 1)


def test_summaries():
    costs = np.zeros((6, 9, 3))
    costs[:2, :3] = 9.0  # the top-left region costs 9 bits per subpixel, the rest nothing
    e = explain.Explanation(costs, ("R", "G", "B"))
    assert np.allclose(e.per_region(3), [[9, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert e.per_channel() == pytest.approx({"R": 1.0, "G": 1.0, "B": 1.0})
    assert e.picture(np.zeros((6, 9, 3), np.uint8)).size[0] == 2 * 9 + 70 + 30


@pytest.mark.parametrize("from_pxc", [False, True])
def test_cli_writes_the_heat_map(tmp_path, from_pxc):
    src = tmp_path / "photo.png"
    shutil.copy(IMAGES / "kodim04-48x64.png", src)
    runner = CliRunner()
    if from_pxc:
        assert runner.invoke(main, ["compress", str(src), "--model", FAST]).exit_code == 0
        src = src.with_suffix(".pxc")
    res = runner.invoke(main, ["explain", str(src)])
    assert res.exit_code == 0, res.output
    assert "per channel: R" in res.output and "per region" in res.output
    heat = Image.open(tmp_path / "photo.bits.png")
    assert heat.size[0] > 2 * 48
    assert runner.invoke(main, ["explain", str(src)]).exit_code == 1  # no overwrite without --force


def test_a_pxc_file_is_explained_with_the_model_it_names(tmp_path):
    src = tmp_path / "photo.png"
    shutil.copy(IMAGES / "kodim04-48x64.png", src)
    runner = CliRunner()
    assert runner.invoke(main, ["compress", str(src), "--model", "pxc-a-3600"]).exit_code == 0
    res = runner.invoke(main, ["explain", str(src.with_suffix(".pxc"))])
    assert res.exit_code == 0, res.output
    costs = pixel_costs(load("kodim04-48x64.png"), weights.by_name("pxc-a-3600"))
    assert f"48×64: {costs.mean():.3f} bits per subpixel" in res.output
