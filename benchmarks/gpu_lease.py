"""What to run when the `device` tool lends a GPU: the GPU encoder check, then training on it.

Here, once per checkout (it writes the ignored folder ``.gpu/``, under the lease's 64 MiB)::

    python benchmarks/gpu_lease.py prepare

Then one device call, which carries ``.gpu`` and fits its 10-minute limit::

    run(command="python3 benchmarks/gpu_lease.py run --run weights/runs/pxc-w --train-minutes 5 --budget-minutes 9",
        carry=[".gpu"], timeout_s=600)

``prepare`` compresses the training photos into ``.pxc`` files with the shipped model (the PNGs,
69 MB, do not fit beside the repository; lossless WebP, 58 MB, only just; ``.pxc`` does),
copies two Kodak images for the encoder check, and downloads the wheels the device lacks
(constriction). ``run`` installs the wheels, decodes the photos back to PNG on the device's
cores (``pxc decompress``, a process per photo), resumes ``--run`` on the GPU with ``--batch``
crops a step for ``--train-minutes``, copies its checkpoint and curve into ``$OUT``, and then, in
what is left of ``--budget-minutes``, runs ``gpu_check.py`` (CPU and GPU bytes identical, the
CPU decode of the GPU's file, throughput on Kodak and a ``--megapixels`` photo; 24 MP is the
issue's size, if a second call can afford it). Its log comes back too. Back here: copy the
checkpoint and curve into the run, resume it on the CPU (with the run's CPU ``--batch`` again:
a resumed run keeps the batch it was last given), commit.

The committed checkpoints of finished runs alone outgrow the call's limit (115 MiB of a 125 MiB
tree on 2026-12-07), and ``prepare`` refuses then. They are not needed on the device: move
every ``weights/runs/*/checkpoint.pt`` but ``--run``'s out of the checkout (to ``/tmp``) before
``prepare`` and the call, and back after (``git status`` shows them deleted meanwhile).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEASE = ROOT / ".gpu"
#: The device's Python (what its wheels must be built for).
DEVICE_PYTHON = "3.12"
#: What one device call carries at most: the working tree (tracked and untracked files that
#: git does not ignore) and ``.gpu``.
CARRY_LIMIT = 64 << 20


def working_tree_bytes() -> int:
    """Bytes of the working tree that a device call sends besides what it carries."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    return sum((ROOT / f).stat().st_size for f in listed if f and (ROOT / f).is_file())


def prepare(kodak: int) -> None:
    """Write ``.gpu/``: the training photos as .pxc files, Kodak images, the device's wheels."""
    sys.path.insert(0, str(ROOT))
    from pxcodec.data import SHARED_DATA

    exclude = ROOT / subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout.strip()
    exclude.parent.mkdir(parents=True, exist_ok=True)
    if not exclude.exists() or "/.gpu/" not in exclude.read_text().split():
        with exclude.open("a") as f:
            f.write("/.gpu/\n")  # the copies travel by ``carry``, never in a commit
    import pxcodec

    (LEASE / "train").mkdir(parents=True, exist_ok=True)
    for png in sorted((SHARED_DATA / "train").glob("*.png")):
        target = LEASE / "train" / f"{png.stem}.pxc"
        if not target.exists():
            target.write_bytes(pxcodec.compress(png))
            print(f"{target.relative_to(ROOT)}: {target.stat().st_size / 1e6:.2f} MB", flush=True)
    (LEASE / "kodak").mkdir(exist_ok=True)
    for png in sorted((SHARED_DATA / "kodak").glob("*.png"))[:kodak]:
        shutil.copy(png, LEASE / "kodak" / png.name)
    (LEASE / "whl").mkdir(exist_ok=True)
    version = subprocess.run([sys.executable, "-m", "pip", "show", "constriction"], capture_output=True,
                             text=True, check=True).stdout.split("Version:")[1].split()[0]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", DEVICE_PYTHON, "--implementation", "cp",
                    *(f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                                                  "manylinux2014_x86_64")),
                    "-d", str(LEASE / "whl"), f"constriction=={version}"], check=True)
    size = sum(p.stat().st_size for p in LEASE.rglob("*") if p.is_file())
    tree = working_tree_bytes()
    print(f".gpu {size / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB "
          f"(a device call carries at most {CARRY_LIMIT >> 20} MiB)")
    if size + tree > CARRY_LIMIT:
        raise SystemExit("too large: the device call would refuse it (fewer --kodak images?)")


def run(run_dir: Path, device: str, batch: int, steps: int, minutes: float, budget: float, megapixels: float
        ) -> None:
    """On the device: install the wheels, decode the photos, train for ``minutes``, copy the run
    to $OUT, then check the GPU encoder in what is left of ``budget`` minutes (``device`` cpu tries
    the same steps on a machine without a GPU)."""
    deadline = time.monotonic() + budget * 60
    out = Path(os.environ.get("OUT", ROOT / "benchmarks" / "results" / "tmp"))
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if importlib.util.find_spec("constriction") is None:
        site = Path("/tmp/site")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(site), *map(str, (LEASE / "whl").glob("*.whl"))], check=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(ROOT), env.get("PYTHONPATH")]))
    photos = Path("/tmp/lease-photos")  # decoded outside the checkout, which must stay small
    shutil.rmtree(photos, ignore_errors=True)
    shutil.copytree(LEASE / "train", photos)
    with (out / "lease.log").open("w") as log:
        def step(*args: str, timeout: float | None = None) -> int:
            log.write(f"$ {' '.join(args)}\n")
            log.flush()
            try:
                return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                log.write("(stopped: out of time)\n")
                return 1

        if step("-m", "pxcodec", "decompress", str(photos), "--threads", "1"):  # a process per photo
            raise SystemExit("the training photos did not decode")
        step("-m", "pxcodec", "train", str(run_dir), "--device", device, "--batch", str(batch),
             "--data", str(photos), "--steps", str(steps), "--minutes", str(minutes))
        for name in ("checkpoint.pt", "curve.csv"):  # safe in $OUT before the check may run out of time
            shutil.copy(run_dir / name, out / name)
        left = deadline - time.monotonic()
        if left > 60:
            step("benchmarks/gpu_check.py", "--images", str(LEASE / "kodak"), "--limit", "100",
                 "--megapixels", str(megapixels), "--large", str(photos / "036.png"), "--device", device,
                 timeout=left)
            result = ROOT / "benchmarks" / "results" / "gpu-check.json"
            if result.exists():
                shutil.copy(result, out / "gpu-check.json")
    print((out / "lease.log").read_text()[-6000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    prep = sub.add_parser("prepare", help="here: write .gpu/")
    prep.add_argument("--kodak", type=int, default=2, help="Kodak images for the encoder check")
    go = sub.add_parser("run", help="on the device: check, train, copy results to $OUT")
    go.add_argument("--run", type=Path, required=True,
                    help="the run to resume on the GPU (the one in training on the CPU), e.g. weights/runs/pxc-w")
    go.add_argument("--device", default="cuda")
    go.add_argument("--batch", type=int, default=32)
    go.add_argument("--steps", type=int, default=10**9,
                    help="train until this step (default: as far as --train-minutes goes)")
    go.add_argument("--train-minutes", type=float, default=5.0)
    go.add_argument("--budget-minutes", type=float, default=9.0,
                    help="the whole call; the encoder check gets what training leaves")
    go.add_argument("--megapixels", type=float, default=6, help="the encoder check's large photo")
    args = ap.parse_args()
    if args.what == "prepare":
        prepare(args.kodak)
    else:
        run(args.run, args.device, args.batch, args.steps, args.train_minutes, args.budget_minutes, args.megapixels)


if __name__ == "__main__":
    main()
