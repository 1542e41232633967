"""Deep fuzzing of the .pxc reader, beyond the bounded hypothesis tests in ``tests/test_fuzz.py``.

    python benchmarks/fuzz.py [--seconds 120] [--seed 0]

1. Sweep: every single-byte flip (xor 0xFF) and every single-bit flip of small RGB, RGBA and
   PNG-fallback files: each must raise a ``PxcError``; counts per error class are reported.
2. Random: mutations (bit flips, truncations, splices, random headers) until the time budget
   runs out; any exception that is not a ``PxcError``, or a damaged file that decodes, is a
   finding. Writes ``benchmarks/results/fuzz.json``.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pxcodec  # noqa: E402
from pxcodec import codec  # noqa: E402
from PIL import Image  # noqa: E402


def samples() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 256, (6, 7), dtype=np.uint8)])
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return {"RGB": pxcodec.compress(rgb), "RGBA": pxcodec.compress(rgba), "PNG": pxcodec.compress(pal)}


def outcome(data: bytes, original: bytes) -> str:
    try:
        codec.decode(data)
    except pxcodec.PxcError as exc:
        return type(exc).__name__
    except Exception:  # a finding: the reader must only raise PxcError
        return "FINDING " + traceback.format_exc(limit=3)
    return "decoded" if data == original else "FINDING damaged file decoded"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    files = samples()
    report: dict = {"sweep": {}, "random": {}}
    findings: list[str] = []
    for name, data in files.items():
        counts: collections.Counter = collections.Counter()
        for i in range(len(data)):
            for mask in (0xFF, 1 << rnd.randrange(8)):
                damaged = bytearray(data)
                damaged[i] ^= mask
                res = outcome(bytes(damaged), data)
                counts[res.split("\n")[0]] += 1
                if res.startswith("FINDING"):
                    findings.append(f"{name} byte {i} ^ {mask:#x}: {res}")
        report["sweep"][name] = {"bytes": len(data), "flips": sum(counts.values()), "outcomes": dict(counts)}
        print(name, report["sweep"][name], flush=True)
    counts = collections.Counter()
    deadline = time.monotonic() + args.seconds
    tried = 0
    while time.monotonic() < deadline:
        name, data = rnd.choice(list(files.items()))
        damaged = bytearray(data)
        kind = rnd.choice(["flips", "truncate", "splice", "header"])
        if kind == "flips":
            for _ in range(rnd.randint(1, 8)):
                damaged[rnd.randrange(len(damaged))] ^= rnd.randint(1, 255)
        elif kind == "truncate":
            damaged = damaged[:rnd.randrange(len(damaged))]
        elif kind == "splice":
            cut = rnd.randrange(len(damaged))
            damaged = damaged[:cut] + bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 64))) + damaged[cut:]
        else:
            start = rnd.randint(10, 60)  # past magic and version: the fields behind the CRC
            damaged[start:start + rnd.randint(1, 16)] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        res = outcome(bytes(damaged), data)
        counts[f"{kind}: {res.split(chr(10))[0]}"] += 1
        tried += 1
        if res.startswith("FINDING"):
            findings.append(f"{name} {kind}: {res}")
    report["random"] = {"inputs": tried, "seconds": args.seconds, "outcomes": dict(counts)}
    report["findings"] = findings
    print(json.dumps(report["random"], indent=2))
    print(f"{len(findings)} findings")
    for f in findings[:20]:
        print(f)
    out = ROOT / "benchmarks" / "results" / "fuzz.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
