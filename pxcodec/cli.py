"""The ``pxc`` command line: compress, decompress, info, train, export.

Errors are one line on stderr and a non-zero exit, never a traceback; outputs are written
atomically and never overwrite an existing file without ``--force``.
"""
from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import os
import tempfile
from pathlib import Path

import click
import torch

from . import adapt, api, codec, container, references, weights
from .config import NEIGHBOUR_SIDES, STREAM_MAX, ModelConfig
from .data import CHROMA_PIPELINES, MAX_GRAIN_COLOUR, MAX_GRAIN_LUMA, MAX_SOFTEN, SHARED_DATA
from .errors import PxcError
from .images import read_file


class _Group(click.Group):
    """Turns every ``PxcError`` and OS error into ``pxc: error: …`` and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (PxcError, OSError) as exc:
            raise click.ClickException(str(exc)) from None


def _write_atomic(path: Path, data: bytes, force: bool) -> None:
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class _Bar:
    """A click progress bar driven by the codec's (done, total) callbacks."""

    def __init__(self, label: str):
        self.label, self.bar, self.done = label, None, 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=click.get_text_stream("stderr"))
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


_device = click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
_model = click.option("--model", default=None,
                      help="Shipped model to code with (weights/NAME.npz; the models and their sizes "
                           f"and speeds are listed in weights/README.md). Default: for each image, whichever "
                           f"of {', '.join(weights.DEFAULT_MODELS)} codes a sample of it in fewer bits. "
                           "Decoding finds the model a file names.")
_force = click.option("--force", is_flag=True, help="Overwrite an existing output file.")
_effort = click.option("--effort", type=click.Choice([str(e) for e in adapt.EFFORTS]),
                       default=str(adapt.DEFAULT_EFFORT), show_default=True,
                       help="Encoder effort: 1 fits each tile's adaptation to a fixed sample of its pixels rather "
                            "than to all of them, encoding faster for files about 0.5-1 % larger. "
                            "Decoding is the same.")
_nthreads = click.option("--threads", type=int, default=None,
                         help="CPU threads; compressing and decompressing, worker processes that share out "
                              "a file's tiles (default: one per core).")


@click.group(cls=_Group)
@click.version_option(package_name="pxcodec", prog_name="pxc")
def main() -> None:
    """pxc: lossless image compression with an exact integer PixelCNN."""


def _expand(sources: tuple[Path, ...], suffix: str) -> list[Path]:
    """Files as given, and the ``suffix`` files directly inside given folders, sorted."""
    files: list[Path] = []
    for src in sources:
        files.extend(sorted(p for p in src.iterdir() if p.suffix.lower() == suffix) if src.is_dir() else [src])
    return files


def _batch(action: str, sources: tuple[Path, ...], suffix: str, output: Path | None, out_suffix: str,
           work, options: dict, jobs: int | None) -> None:
    """Run ``work(src, out, progress=…, **options)`` per file, printing the lines it returns.

    One file: in this process, with a progress bar over its steps. Several: ``jobs`` processes
    (default: one per CPU core) with one progress bar for the batch; a failed file is reported
    and the others go on.
    """
    files = _expand(sources, suffix)
    if not files:
        raise click.ClickException(f"no {suffix} files to {action}")
    if output and len(files) != 1:
        raise click.ClickException("-o/--output needs exactly one input file")
    if len(files) == 1:
        bar = _Bar(f"{action} {files[0].name}")
        try:
            lines = work(files[0], output or files[0].with_suffix(out_suffix), progress=bar, **options)
        except (PxcError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            bar.close()
        click.echo("\n".join(lines))
        return
    failures = 0
    workers = max(1, min(jobs or os.cpu_count() or 1, len(files)))
    # spawned (not forked) workers: forking a process that has run OpenMP code can hang
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=torch.set_num_threads, initargs=(1,)) as pool, \
            click.progressbar(length=len(files), label=f"{action} {len(files)} files",
                              file=click.get_text_stream("stderr")) as bar:
        futures = {pool.submit(work, src, src.with_suffix(out_suffix), **options): src for src in files}
        for future in concurrent.futures.as_completed(futures):
            src = futures[future]
            try:
                click.echo("\n".join(future.result()))
            except (PxcError, OSError, click.ClickException) as exc:
                failures += 1
                msg = exc.message if isinstance(exc, click.ClickException) else str(exc)
                click.echo(f"Error: {src}: {msg}" if str(src) not in msg else f"Error: {msg}", err=True)
            bar.update(1)
    if failures:
        raise click.ClickException(f"{failures} of {len(files)} files failed")


_sources = click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
_jobs = click.option("-j", "--jobs", type=int, default=None,
                     help="Processes for several files. Default: one per CPU core.")


def _chosen(model: str | None) -> weights.ModelFile | None:
    """The named model, or None for the encoder's choice; an unknown name (or a missing
    candidate of the choice) fails once, before any file is read."""
    if model:
        return weights.by_name(model)
    for name in weights.DEFAULT_MODELS:
        weights.by_name(name)
    return None


def _refuse_existing(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists (use --force to overwrite)")


def compress_file(src: Path, out: Path, *, force: bool, compare: bool, model: weights.ModelFile | None, device: str,
                  effort: int = adapt.DEFAULT_EFFORT, progress: codec.Progress | None = None) -> list[str]:
    """Compress one file with ``model`` (None: the encoder's choice) at encoder ``effort``;
    returns the lines to print."""
    _refuse_existing(out, force)
    picture = read_file(src)
    encoded = codec.encode(picture, model, device=device, effort=effort, progress=progress)
    data = encoded.data
    _write_atomic(out, data, force)
    coded_by = f" ({encoded.model.name})" if encoded.model else ""
    lines = [f"{src} -> {out}: {len(data):,} bytes, {_mode(picture.mode)} {_rate(len(data), picture)}{coded_by}"]
    if compare and picture.mode == "RGB":
        lines += _comparison(picture.pixels, len(data), picture.width, picture.height)
    return lines


def decompress_file(src: Path, out: Path, *, force: bool, device: str,
                    progress: codec.Progress | None = None) -> list[str]:
    """Decompress one file; returns the lines to print."""
    _refuse_existing(out, force)
    picture = codec.decode(src.read_bytes(), device=device, progress=progress)
    _write_atomic(out, picture.to_png(), force)
    return [f"{src} -> {out}: {picture.width}×{picture.height} {picture.mode}"]


@main.command()
@_sources
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (one input only). Default: each input with .pxc.")
@click.option("--compare", is_flag=True, help="Also print the sizes of PNG and WebP lossless.")
@_model
@_effort
@_force
@_device
@_nthreads
@_jobs
def compress(sources: tuple[Path, ...], output: Path | None, compare: bool, model: str | None, effort: str,
             force: bool, device: str, threads: int | None, jobs: int | None) -> None:
    """Compress images (files, or the PNGs in folders) to .pxc files."""
    _threads(threads)
    chosen = _chosen(model)
    _batch("compress", sources, ".png", output, ".pxc", compress_file,
           {"force": force, "compare": compare, "model": chosen, "device": device, "effort": int(effort)}, jobs)


def _mode(mode: str) -> str:
    return "PNG fallback" if mode == "PNG" else mode


def _rate(nbytes: int, picture) -> str:
    channels = codec.CHANNELS[picture.mode]
    if channels is None:
        return f"{8 * nbytes / (picture.width * picture.height):.3f} bits/pixel"
    return f"{codec.bits_per_subpixel(nbytes, picture.width, picture.height, channels):.3f} bpsp"


def _comparison(pixels, pxc_bytes: int, w: int, h: int) -> list[str]:
    sizes = {"pxc": pxc_bytes}
    sizes.update({name: len(c.encode(pixels)) for name, c in references.codecs(with_optional=False).items()})
    lines = [f"{'codec':<16} {'bytes':>10} {'bpsp':>7} {'vs pxc':>7}"]
    for name, n in sizes.items():
        lines.append(f"{name:<16} {n:>10,} {codec.bits_per_subpixel(n, w, h):>7.3f} {n / pxc_bytes:>7.3f}")
    return lines


@main.command()
@_sources
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (one input only). Default: each input with .png.")
@_force
@_device
@_nthreads
@_jobs
def decompress(sources: tuple[Path, ...], output: Path | None, force: bool, device: str,
               threads: int | None, jobs: int | None) -> None:
    """Decompress .pxc files (files, or the .pxc files in folders) to PNG."""
    _threads(threads)
    _batch("decompress", sources, ".pxc", output, ".png", decompress_file, {"force": force, "device": device}, jobs)


@main.command()
@_sources
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for bench.csv, bench.json and the chart bench.png.")
@click.option("--repeat", default=1, show_default=True, help="Encodes per image (median time).")
@_model
@_effort
@_device
@_nthreads
def bench(sources: tuple[Path, ...], out: Path | None, repeat: int, model: str | None, effort: str, device: str,
          threads: int | None) -> None:
    """Compare pxc with PNG, WebP (and JPEG XL, JPEG 2000 with imagecodecs) on RGB images."""
    from . import bench as benchmark

    _threads(threads)
    files = benchmark.rgb_images(sources)
    if not files:
        raise click.ClickException("no images to benchmark")
    chosen = _chosen(model)
    rows = []
    with click.progressbar(files, label=f"bench {len(files)} images", file=click.get_text_stream("stderr")) as bar:
        for path in bar:
            try:
                rows.append(benchmark.measure(path, chosen, repeat, device=device, effort=int(effort)))
            except PxcError as exc:
                click.echo(f"\nskipped {path}: {exc}", err=True)
    if not rows:
        raise click.ClickException("no image could be benchmarked")
    click.echo(benchmark.table(rows))
    if out:
        named = {"model": chosen.name, "fingerprint": chosen.fingerprint.hex()} if chosen else {}
        benchmark.write(rows, out, extra={**named, "effort": int(effort)})
        click.echo(f"wrote {out / 'bench.csv'}, {out / 'bench.json'} and {out / 'bench.png'}")


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Heat map PNG. Default: SRC with .bits.png.")
@_force
@_device
@_nthreads
def explain(src: Path, output: Path | None, force: bool, device: str, threads: int | None) -> None:
    """Show where the bits of SRC (an image or a .pxc file) go: a heat map and totals."""
    from . import explain as explaining
    from .neural import pixel_costs

    _threads(threads)
    out = output or src.with_name(src.stem + ".bits.png")
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists (use --force to overwrite)")
    model = None  # an image: the model the encoder would choose; a .pxc file: the one it names
    if src.suffix.lower() == ".pxc":
        data = src.read_bytes()
        picture = codec.decode(data, device=device, progress=_Bar(f"decode {src.name}"))
        model = weights.by_fingerprint(container.unpack(data)[0].fingerprint)
    else:
        picture = read_file(src)
    if picture.mode not in container.MODEL_CODED:
        raise click.ClickException(f"{src}: {picture.mode} images are not model-coded; nothing to explain")
    bar = _Bar(f"explain {src.name}")
    try:
        costs = pixel_costs(picture.pixels, model, device=device, progress=bar)
    finally:
        bar.close()
    e = explaining.Explanation(costs, ("R", "G", "B") if costs.shape[-1] == 3 else ("grey",))
    buf = io.BytesIO()
    e.picture(picture.pixels).save(buf, format="PNG")
    _write_atomic(out, buf.getvalue(), force)
    click.echo(explaining.report(e, picture.width, picture.height))
    click.echo(f"heat map: {out}")


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info(src: Path) -> None:
    """Describe the .pxc file SRC: size, mode, model, bits per subpixel."""
    data = src.read_bytes()
    header = api.info(data)
    try:
        model = weights.by_fingerprint(header.fingerprint).name
    except PxcError:
        model = "not installed"
    click.echo(f"{src}: {header.width}×{header.height} {_mode(header.mode)}, {len(data):,} bytes, "
               f"{_rate(len(data), header)}")
    if header.mode in container.MODEL_CODED:
        if header.stream_cols:
            layout = (f"{header.tiles} independent tile(s) of up to {header.stream_rows} rows × "
                      f"{header.stream_cols} columns")
        else:
            kind = "independent" if header.independent else "dependent"
            layout = f"{header.bands} {kind} band(s) of {header.stream_rows} rows"
        click.echo(f"model {header.fingerprint.hex()[:16]} ({model}), {layout}, format version {header.version}")
    else:
        click.echo(f"kept as a PNG inside the file (no model), format version {header.version}")


@main.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=SHARED_DATA / "train", show_default=True,
              help="Folder of the training photos (PNG).")
@click.option("--steps", default=100_000, show_default=True, help="Train until this step.")
@click.option("--minutes", type=float, default=None, help="Stop after this much wall time.")
@click.option("--channels", default=64, show_default=True)
@click.option("--blocks", default=4, show_default=True)
@click.option("--hidden", type=click.IntRange(min=1), default=None,
              help="Width of each block's inner layer (default: --channels).")
@click.option("--components", default=5, show_default=True)
@click.option("--blend", is_flag=True,
              help="Let each mean move towards a classical prediction (MED of R, G - R, B - G; "
                   "pxcodec.predictor).")
@click.option("--stream-max", type=click.Choice([str(v) for v in STREAM_MAX]), default=str(STREAM_MAX[0]),
              show_default=True, help="Top of the residual stream's integer grid: 255 is twice as fine "
                                      "(a run started from a coarser one keeps its range).")
@click.option("--posterior", is_flag=True,
              help="Let G's and B's mixture weights follow which of R's (and G's) components explain "
                   "the decoded value (pxcodec.mixture.posterior_shift).")
@click.option("--coupling", type=click.IntRange(0), default=0, show_default=True,
              help="Hidden width of the coupling net that moves G's and B's mixtures by what R (and G) "
                   "turned out to be (pxcodec.coupling; 0: none).")
@click.option("--neighbours", type=click.IntRange(0), default=0, show_default=True,
              help="Hidden width of the neighbour net that moves every channel's mixture by what the W, N, "
                   "NW and NE pixels turned out to be (pxcodec.neighbours; 0: none).")
@click.option("--neighbour-reach", type=click.Choice([str(v) for v in NEIGHBOUR_SIDES]), default="1",
              show_default=True, help="How far the neighbour net reads: 1, W, N, NW and NE; 2, also WW, NN, "
                                      "NWW, NNW and NNE; 3, also NEE, NNWW and NNEE (a run started from a shorter "
                                      "reach reads the new ones at 0).")
@click.option("--batch", default=8, show_default=True)
@click.option("--crop", default=64, show_default=True)
@click.option("--chroma", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of crops with their chroma at half resolution, as cameras and JPEG store it.")
@click.option("--chroma-pipelines", "pipelines", type=click.Choice(list(CHROMA_PIPELINES)), default="bilinear",
              show_default=True, help="How those crops' chroma comes back: bilinear only, or mixed (also "
                                      "bicubic, nearest and 4:2:2; pxcodec.data.CHROMA_PIPELINES).")
@click.option("--downscale", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of crops shrunk from a larger region (by a random factor of 1 to 1/2).")
@click.option("--soften-chroma", "soften", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help=f"Fraction of the halved crops whose chroma is shrunk by a random factor of 2 to {MAX_SOFTEN:g} "
                   "instead (softer colour, as film or demosaicing leave it; pxcodec.data.soften_chroma).")
@click.option("--grain", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help=f"Fraction of crops given noise after their colour step: a part shared by the channels of up to "
                   f"{MAX_GRAIN_LUMA:g} and each channel's own of up to {MAX_GRAIN_COLOUR:g} standard deviations "
                   "(film grain, sensor noise; pxcodec.data.add_grain).")
@click.option("--lr", default=5e-4, show_default=True)
@click.option("--half-life", default=10_000, show_default=True, help="LR halves every N steps.")
@click.option("--ema", default=0.999, show_default=True, help="Weight averaging decay (exported model).")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=1, show_default=True, help="CPU threads for torch.")
@click.option("--start-from", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Begin a new run from another run's weights; blocks it lacks start as identities, "
                   "wider blocks' new channels unread, a blend it lacks at 0, a finer stream on the "
                   "same range, a small net's new sides or hidden units unread.")
@click.option("--compile", "compiled", is_flag=True,
              help="Compile the training loss with torch.compile: faster steps, after about a minute "
                   "of compiling at each start (needs a C compiler on the CPU).")
@_device
def train(run: Path, data: Path, steps: int, minutes: float | None, channels: int, blocks: int,
          hidden: int | None, components: int, blend: bool, stream_max: str, posterior: bool, coupling: int,
          neighbours: int, neighbour_reach: str, batch: int, crop: int, chroma: float, pipelines: str,
          downscale: float, soften: float, grain: float, lr: float, half_life: int, ema: float, seed: int,
          threads: int, start_from: Path | None, compiled: bool, device: str) -> None:
    """Train (or resume) the model in folder RUN.

    Resuming keeps the run's recipe, except where the photos are (--data), the device and the
    number of steps, which come from the command line; of the other options given there, --lr,
    --half-life, --ema, --batch, --crop, --chroma, --chroma-pipelines, --downscale,
    --soften-chroma and --grain change it from then on.
    """
    from .train import RESUMABLE, TrainOptions
    from .train import train as run_training

    torch.set_num_threads(threads)
    ctx = click.get_current_context()
    given = tuple(k for k in RESUMABLE
                  if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE)
    cfg = ModelConfig(channels=channels, blocks=blocks, components=components, blend=blend,
                      stream_max=int(stream_max), hidden=hidden, posterior=posterior,
                      coupling=coupling, neighbours=neighbours, neighbour_reach=int(neighbour_reach))
    opt = TrainOptions(data=data, config=cfg, steps=steps, batch=batch, crop=crop, chroma=chroma,
                       pipelines=pipelines, downscale=downscale, soften=soften, grain=grain, lr=lr,
                       half_life=half_life, ema=ema, seed=seed, device=device)
    try:
        run_training(run, opt, minutes=minutes, log=click.echo, changes=("steps", "device", "data") + given,
                     start_from=start_from, compiled=compiled)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("name")
@click.option("--average", "also", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An earlier checkpoint of the same run to average the weights with (repeatable).")
@_force
def export(run: Path, name: str, also: tuple[Path, ...], force: bool) -> None:
    """Export the checkpoint of training run RUN as integer model NAME in weights/."""
    from .train import export_run

    path = weights.WEIGHTS_DIR / f"{name}.npz"
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists (use --force to overwrite)")
    try:
        card = export_run(run, name, weights.WEIGHTS_DIR, also)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path} (fingerprint {card['fingerprint'][:16]}) and its card")
