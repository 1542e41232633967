"""The wheel carries the shipped weights, so ``pip install .`` gives a working codec."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pxcodec
from pxcodec import weights

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_default_models(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("pxcodec-*.whl")
    assert f"-{pxcodec.__version__}-" in wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        shipped = [z.read(f"pxcodec/_weights/{name}.npz") for name in weights.DEFAULT_MODELS]
    assert [hashlib.sha256(s).digest() for s in shipped] == [weights.by_name(n).fingerprint
                                                             for n in weights.DEFAULT_MODELS]
    assert not any("/runs/" in n or n.endswith(".pt") for n in names)  # no training checkpoints


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "pxcodec", "--version"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert pxcodec.__version__ in out.stdout
