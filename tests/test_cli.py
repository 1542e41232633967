"""The ``pxc`` command line as a user meets it: outputs, refusals, one-line errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import pxcodec
from pxcodec import container, neural, weights
from pxcodec.cli import main

from .conftest import FAST, IMAGES


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "photo.png"
    shutil.copy(IMAGES / "kodim15-64x48.png", path)
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compress_decompress_next_to_input(photo, tmp_path):
    res = run("compress", photo)
    assert res.exit_code == 0, res.output
    pxc = tmp_path / "photo.pxc"
    assert pxc.exists() and "bpsp" in res.output
    out = tmp_path / "back.png"
    res = run("decompress", pxc, "-o", out)
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(photo)))


def test_existing_output_needs_force(photo, tmp_path):
    fast = ("--model", FAST)  # file handling does not depend on the model
    assert run("compress", photo, *fast).exit_code == 0
    pxc = tmp_path / "photo.pxc"
    before = pxc.read_bytes()
    res = run("compress", photo, *fast)
    assert res.exit_code != 0 and "--force" in res.output
    assert pxc.read_bytes() == before
    # decompressing next to the original PNG must not clobber it
    res = run("decompress", pxc)
    assert res.exit_code != 0 and "exists" in res.output
    assert run("compress", photo, *fast, "--force").exit_code == 0


def test_compare_prints_png_and_webp(photo, tmp_path):
    res = run("compress", photo, "-o", tmp_path / "x.pxc", "--compare", "--model", FAST)
    assert res.exit_code == 0, res.output
    assert "PNG" in res.output and "WebP" in res.output


def test_info(photo, tmp_path):
    out = run("compress", photo).output
    header = pxcodec.info((tmp_path / "photo.pxc").read_bytes())
    chosen = weights.by_fingerprint(header.fingerprint).name  # the model the file names
    assert f"bpsp ({chosen})" in out
    res = run("info", tmp_path / "photo.pxc")
    assert res.exit_code == 0
    assert "64×48 RGB" in res.output and "bpsp" in res.output
    assert (f"({chosen}), 1 independent tile(s) of up to {neural.STREAM_ROWS} rows × {neural.STREAM_COLS} "
            f"columns, format version {container.VERSION}") in res.output


def test_model_option_picks_a_shipped_model(photo, tmp_path):
    """``--model`` codes with another shipped model; the file names it and decodes without being
    told; an unknown name is a one-line error that writes nothing."""
    res = run("compress", photo, "--model", "pxc-a-3600")
    assert res.exit_code == 0, res.output
    pxc = tmp_path / "photo.pxc"
    assert "(pxc-a-3600)" in run("info", pxc).output
    assert run("decompress", pxc, "-o", tmp_path / "back.png").exit_code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), np.asarray(Image.open(photo)))
    pxc.unlink()
    res = run("compress", photo, "--model", "no-such-model")
    assert res.exit_code == 1 and "no model named 'no-such-model'" in res.output
    assert not pxc.exists()


def test_effort_option(photo, tmp_path):
    """--effort 2 writes a file that decompresses exactly; a level there is none of is a usage error."""
    out = tmp_path / "hard.pxc"
    res = run("compress", photo, "--effort", "2", "--model", FAST, "-o", out)
    assert res.exit_code == 0, res.output
    back = tmp_path / "back.png"
    assert run("decompress", out, "-o", back).exit_code == 0
    assert np.array_equal(np.asarray(Image.open(back)), np.asarray(Image.open(photo)))
    res = run("compress", photo, "--effort", "9", "-o", tmp_path / "no.pxc")
    assert res.exit_code == 2 and "effort" in res.output and not (tmp_path / "no.pxc").exists()


def test_info_names_the_layout_of_older_files():
    res = run("info", IMAGES / "kodim04-40x30-v1.pxc")
    assert res.exit_code == 0 and "(pxc-a-23800), 3 dependent band(s) of 16 rows, format version 1" in res.output


@pytest.mark.parametrize("content", [b"", b"garbage" * 10])
def test_bad_inputs_are_one_line_errors(tmp_path, content):
    bad = tmp_path / "bad.pxc"
    bad.write_bytes(content)
    res = run("decompress", bad)
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1
    assert not (tmp_path / "bad.png").exists()
    notimage = tmp_path / "notimage.png"
    notimage.write_bytes(content)
    res = run("compress", notimage)
    assert res.exit_code == 1 and "cannot read image" in res.output and "object at 0x" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pxc", "notimage.png"]


def test_no_partial_output_on_corrupt_stream(photo, tmp_path):
    run("compress", photo, "--model", FAST)
    pxc = tmp_path / "photo.pxc"
    data = bytearray(pxc.read_bytes())
    data[-3] ^= 0x40
    pxc.write_bytes(bytes(data))
    res = run("decompress", pxc, "-o", tmp_path / "out.png")
    assert res.exit_code == 1 and "checksum" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "photo.pxc"]


def test_batch_reports_failures_and_goes_on(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(IMAGES / "kodim15-64x48.png", folder / "a.png")
    (folder / "b.png").write_bytes(b"not a png")
    shutil.copy(IMAGES / "kodim04-48x64.png", folder / "c.png")
    res = run("compress", folder, "--model", FAST)  # batches do not depend on the model
    assert res.exit_code == 1
    assert (folder / "a.pxc").exists() and (folder / "c.pxc").exists() and not (folder / "b.pxc").exists()
    assert "b.png" in res.output and "1 of 3 files failed" in res.output
    for name in ("a", "c"):
        (folder / f"{name}.png").rename(folder / f"{name}.orig.png")
    res = run("decompress", folder)
    assert res.exit_code == 0, res.output
    for name in ("a", "c"):
        assert np.array_equal(np.asarray(Image.open(folder / f"{name}.png")),
                              np.asarray(Image.open(folder / f"{name}.orig.png")))


def test_output_option_needs_one_input(photo, tmp_path):
    res = run("compress", photo, photo, "-o", tmp_path / "x.pxc")
    assert res.exit_code == 1 and "exactly one input" in res.output
    assert not (tmp_path / "x.pxc").exists()
