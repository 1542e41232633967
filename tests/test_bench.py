"""``pxc bench``: a table, CSV, JSON and chart, with every pxc file verified."""
from __future__ import annotations

import csv
import json
import shutil

from click.testing import CliRunner
from PIL import Image

from pxcodec import neural
from pxcodec.cli import main

from .conftest import IMAGES, load


def test_bench_writes_table_csv_json_and_chart(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("kodim15-64x48.png", "kodim04-48x64.png"):
        shutil.copy(IMAGES / name, folder / name)
    Image.new("L", (8, 8)).save(folder / "grey.png")  # not RGB: skipped with a message
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["bench", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "PNG" in res.output and "WebP" in res.output and "all" in res.output
    assert "skipped" in res.output and "grey.png" in res.output
    rows = list(csv.DictReader((out / "bench.csv").open()))
    assert [r["image"] for r in rows] == ["kodim04-48x64", "kodim15-64x48"]
    for r in rows:
        assert r["model"] == neural.choose_model(load(f"{r['image']}.png")).name  # the encoder's own choice
        assert float(r["pxc_bpsp"]) >= float(r["ideal_bpsp"]) > 0
        assert int(r["PNG bytes"]) > 0 and int(r["WebP bytes"]) > 0
    document = json.loads((out / "bench.json").read_text())
    summary = document["summary"]
    assert summary["images"] == 2 and summary["pxc/PNG"] > 0
    assert sorted(document["machine"]["kernels"]) == ["float32", "int8"]  # what the times ran on
    assert f"{document['machine']['kernels'][0]} GEMMs" in res.output
    assert sum(summary["models"].values()) == 2
    assert Image.open(out / "bench.png").size[0] >= 480
