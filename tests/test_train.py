"""Training resumes from its checkpoint, logs its curve, and exports a working integer model."""
from __future__ import annotations

import csv
import dataclasses
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from click.testing import CliRunner

from pxcodec import model as float_model
from pxcodec import weights
from pxcodec.cli import main
from pxcodec.config import ModelConfig
from pxcodec.model import PixelCNN, grown
from pxcodec.data import (_RGB, CHROMA_PIPELINES, MAX_GRAIN_COLOUR, MAX_GRAIN_LUMA, MIN_SCALE, CropSampler, add_grain,
                          halve_chroma, load_rgb, soften_chroma, to_ycbcr)
from pxcodec.train import TrainOptions, export_run, train

from .conftest import IMAGES, assert_integer_matches_float, decode, encode


@pytest.fixture()
def tiny_run(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for i, name in enumerate(["kodim15-64x48.png", "kodim04-48x64.png", "kodim23-256.png"]):
        (data / f"{i:03d}.png").write_bytes((IMAGES / name).read_bytes())
    monkeypatch.setattr("pxcodec.data.VALIDATION_NAMES", ("002",))
    cfg = ModelConfig(channels=8, blocks=1, components=2)
    return tmp_path / "run", TrainOptions(data=data, config=cfg, steps=4, batch=2, crop=32,
                                          log_every=2, val_every=2)


def test_resume_continues_the_same_run(tiny_run):
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    first = torch.load(run / "checkpoint.pt", weights_only=False)
    assert first["step"] == 4
    opt.steps = 6
    train(run, opt, log=lambda _: None)
    rows = list(csv.DictReader((run / "curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert all(float(r["val_bpsp"]) > 0 for r in rows)


def test_a_run_stopped_before_its_first_log_resumes_as_itself(tiny_run, tmp_path):
    """Killed before its first step's checkpoint, a run started from another one resumes with its
    own (grown) model from its starting step, rather than starting a default model afresh."""
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    deeper = dataclasses.replace(opt, config=dataclasses.replace(opt.config, blocks=2), steps=6)

    def killed(line: str) -> None:
        if line.startswith("step"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "deeper", deeper, log=killed, start_from=run)
    assert torch.load(tmp_path / "deeper" / "checkpoint.pt", weights_only=False)["step"] == 4
    train(tmp_path / "deeper", dataclasses.replace(opt, steps=6), log=lambda _: None)
    state = torch.load(tmp_path / "deeper" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6 and state["options"].config.blocks == 2


def test_training_is_seeded(tiny_run, tmp_path):
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    train(tmp_path / "again", opt, log=lambda _: None)
    a = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "again" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_exported_model_codes_exactly(tiny_run, tmp_path, monkeypatch, kodak_crop):
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    folder = tmp_path / "weights"
    folder.mkdir()
    card = export_run(run, "tiny", folder)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", folder)
    model = weights.by_name("tiny")
    assert model.fingerprint.hex() == card["fingerprint"]
    assert card["training"]["steps"] == 4 and card["architecture"]["macs_per_pixel"] > 0
    enc = encode(kodak_crop, model)
    assert np.array_equal(decode(enc.data), kodak_crop)


def test_export_averages_earlier_checkpoints(tiny_run, tmp_path, monkeypatch):
    """``pxc export --average`` exports the mean of the run's averaged weights and an earlier
    checkpoint's, records the steps in the card, and refuses another architecture's checkpoint."""
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    earlier = tmp_path / "step4.pt"
    shutil.copy(run / "checkpoint.pt", earlier)
    opt.steps = 8
    train(run, opt, log=lambda _: None)
    folder = tmp_path / "weights"
    folder.mkdir()
    card = export_run(run, "mean", folder, (earlier,))
    assert card["training"]["averaged_steps"] == [4, 8] and card["training"]["float_val_bpsp_crops"] is None
    mean = PixelCNN(opt.config)
    a, b = (torch.load(path, weights_only=False)["ema"] for path in (earlier, run / "checkpoint.pt"))
    mean.load_state_dict({k: (a[k].double() + b[k].double()).div(2).to(a[k].dtype) for k in a})
    assert card["fingerprint"] == weights.save(weights.export(mean), tmp_path / "again.npz")
    assert card["fingerprint"] != export_run(run, "last", folder)["fingerprint"]
    other = tmp_path / "other"
    train(other, dataclasses.replace(opt, config=ModelConfig(channels=8, blocks=2, components=2), steps=2),
          log=lambda _: None)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", folder)
    result = CliRunner().invoke(main, ["export", str(run), "bad", "--average", str(other / "checkpoint.pt")])
    assert result.exit_code == 1 and "another architecture" in result.output
    assert not (folder / "bad.npz").exists()


def test_integer_model_matches_the_float_model(kodak_crop):
    """Export reproduces the QAT model's head parameters (up to rare multiplier roundings)."""
    torch.manual_seed(0)
    assert_integer_matches_float(PixelCNN(ModelConfig(channels=16, blocks=2, components=3)).eval(), kodak_crop)


def test_resume_may_change_the_learning_rate_only_when_asked(tiny_run):
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    opt.steps, opt.lr = 6, opt.lr / 10
    opt.config = ModelConfig(channels=4, blocks=1, components=1)  # ignored: the run keeps its model
    train(run, opt, log=lambda _: None, changes=("steps", "lr"))
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["options"].lr == opt.lr and state["options"].config.channels == 8
    assert "ema" in state and not all(torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    rows = list(csv.DictReader((run / "curve.csv").open()))
    assert float(rows[-1]["lr"]) < float(rows[1]["lr"]) / 5


def test_resume_reads_the_photos_from_another_folder(tiny_run, tmp_path):
    """A run resumed on another machine reads the same photos from where they are there (a GPU
    lease's copy); the folder is recorded, the recipe is kept."""
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    copies = tmp_path / "elsewhere"
    shutil.copytree(opt.data, copies)
    opt.steps, opt.data, opt.batch = 6, copies, 4
    train(run, opt, log=lambda _: None, changes=("steps", "device", "data"))
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6 and state["options"].data == copies and state["options"].batch == 2


def test_halved_chroma_keeps_grey_and_luma_and_drops_fine_chroma():
    """Grey has no chroma to halve; in a photo luma survives to rounding; a chroma checkerboard
    (one-pixel period) averages out."""
    grey = torch.arange(256, dtype=torch.uint8).repeat(3, 4, 1)[None]
    assert torch.equal(halve_chroma(grey), grey)
    photo = load_rgb(IMAGES / "kodim23-256.png")[None, :, :63, :50]  # odd sizes too
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert ((photo.float() * luma).sum(1) - (halve_chroma(photo).float() * luma).sum(1)).abs().max() <= 2
    sign = (torch.arange(16)[:, None] + torch.arange(16)) % 2 * 2 - 1
    ycc = torch.stack([torch.full((16, 16), 128.0), 20.0 * sign, -20.0 * sign])
    to_rgb = torch.linalg.inv(torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                                            [0.5, -0.418688, -0.081312]]))
    checker = torch.einsum("ij,jhw->ihw", to_rgb, ycc).round().to(torch.uint8)[None]
    halved = halve_chroma(checker).float()
    assert (halved - halved.mean((2, 3), keepdim=True)).abs().max() <= 1
    assert (checker.float() - checker.float().mean((2, 3), keepdim=True)).abs().min() >= 5


def test_the_other_chroma_pipelines_keep_what_they_should():
    """4:2:2 keeps chroma that changes from row to row, which 4:2:0 averages out; interpolating
    back by repeating leaves each 2 × 2 block one colour, where bilinear interpolation does not."""
    stripes = torch.tensor([20.0, -20.0]).repeat(8)[:, None].expand(16, 16)
    ycc = torch.stack([torch.full((16, 16), 128.0), stripes, -stripes])
    image = torch.einsum("ij,jhw->ihw", _RGB, ycc).round().to(torch.uint8)[None]
    assert (halve_chroma(image, rows=1).float() - image.float()).abs().max() <= 1
    assert (halve_chroma(image).float() - image.float()).abs().max() >= 10
    noisy = torch.randint(96, 160, (1, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))

    def spread(images: torch.Tensor) -> float:
        """Largest chroma range inside a 2 × 2 block."""
        blocks = to_ycbcr(images.float())[:, 1:].unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)
        return float((blocks.amax(-1) - blocks.amin(-1)).max())
    assert spread(halve_chroma(noisy, upsample="nearest")) <= 1
    assert spread(halve_chroma(noisy)) >= 4 and spread(halve_chroma(noisy, upsample="bicubic")) >= 4


def chroma_step(images: torch.Tensor) -> torch.Tensor:
    """Mean |horizontal step| of Cb and Cr per image (n,): how fine its colour detail is."""
    return to_ycbcr(images.float())[:, 1:].diff(dim=-1).abs().mean((1, 2, 3))


def test_softened_chroma_is_softer_the_larger_the_factor_and_keeps_luma():
    grey = torch.arange(256, dtype=torch.uint8).repeat(3, 4, 1)[None]
    assert torch.equal(soften_chroma(grey, 3.0), grey)
    photo = load_rgb(IMAGES / "kodim23-256.png")[None, :, :63, :50]
    steps = [float(chroma_step(im)) for im in (photo, halve_chroma(photo), soften_chroma(photo, 2.0),
                                                soften_chroma(photo, 3.0), soften_chroma(photo, 4.0))]
    assert steps[0] > steps[1] > steps[3] > steps[4] and steps[2] > steps[3]
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert ((photo.float() * luma).sum(1) - (soften_chroma(photo, 4.0).float() * luma).sum(1)).abs().max() <= 2


def test_sampler_softens_the_asked_fraction_of_the_halved_crops(tiny_run):
    """With ``soften`` 0.5 some crops come out halved as before and the others softer than that;
    with 1, every crop is softer than the halved crop."""
    _, opt = tiny_run
    paths = sorted(opt.data.glob("*.png"))
    plain = CropSampler(paths, 32).batch(16, torch.Generator().manual_seed(3))
    halved = halve_chroma(plain)
    half = CropSampler(paths, 32, chroma=1.0, soften=0.5).batch(16, torch.Generator().manual_seed(3))
    same = torch.tensor([torch.equal(half[j], halved[j]) for j in range(16)])
    assert 0 < int(same.sum()) < 16
    assert (chroma_step(half[~same]) < chroma_step(halved[~same])).all()
    every = CropSampler(paths, 32, chroma=1.0, soften=1.0).batch(16, torch.Generator().manual_seed(3))
    assert (chroma_step(every) < chroma_step(halved)).all()
    with pytest.raises(ValueError, match="soften"):
        CropSampler(paths, 32, chroma=1.0, soften=1.5)


def test_grain_adds_noise_shared_by_the_channels_and_each_ones_own():
    """No noise leaves the image as it was; shared noise moves the three channels alike; each
    channel's own noise has about the asked standard deviation."""
    grey = torch.full((1, 3, 96, 96), 128, dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(add_grain(grey, torch.zeros(1), torch.zeros(1, 3), gen), grey)
    shared = add_grain(grey, torch.tensor([1.5]), torch.zeros(1, 3), gen).float() - 128
    assert torch.equal(shared[:, 0], shared[:, 1]) and torch.equal(shared[:, 0], shared[:, 2])
    assert 1.4 < float(shared.std()) < 1.65
    own = add_grain(grey, torch.zeros(1), torch.tensor([[0.0, 0.6, 1.2]]), gen).float() - 128
    assert float(own[:, 0].abs().max()) == 0
    assert 0.55 < float(own[:, 1].std()) < 0.75 and 1.15 < float(own[:, 2].std()) < 1.3
    assert not torch.equal(own[:, 1], own[:, 2])


def test_sampler_adds_grain_to_the_asked_fraction_of_the_crops(tiny_run):
    """With ``grain`` 0.5 some crops come out as before and the others a little noisier; the
    crops themselves are the ones the sampler gives without grain."""
    _, opt = tiny_run
    paths = sorted(opt.data.glob("*.png"))
    plain = CropSampler(paths, 32, chroma=1.0).batch(16, torch.Generator().manual_seed(3))
    half = CropSampler(paths, 32, chroma=1.0, grain=0.5).batch(16, torch.Generator().manual_seed(3))
    same = torch.tensor([torch.equal(half[j], plain[j]) for j in range(16)])
    assert 0 < int(same.sum()) < 16
    moved = (half[~same].float() - plain[~same].float()).abs()
    assert moved.max() <= 3 * (MAX_GRAIN_LUMA + MAX_GRAIN_COLOUR) + 1 and (moved.mean((1, 2, 3)) > 0).all()
    with pytest.raises(ValueError, match="grain"):
        CropSampler(paths, 32, grain=-0.5)


def test_mixed_pipelines_halve_each_crop_through_one_of_them(tiny_run):
    _, opt = tiny_run
    paths = sorted(opt.data.glob("*.png"))
    plain = CropSampler(paths, 16).batch(24, torch.Generator().manual_seed(3))
    mixed = CropSampler(paths, 16, chroma=1.0, pipelines="mixed").batch(24, torch.Generator().manual_seed(3))
    ways = [halve_chroma(plain, rows, upsample) for (rows, upsample), _ in CHROMA_PIPELINES["mixed"]]
    used = [[i for i, way in enumerate(ways) if torch.equal(mixed[j], way[j])] for j in range(24)]
    assert all(used) and len({tuple(u) for u in used}) > 1
    with pytest.raises(ValueError, match="unknown chroma pipelines"):
        CropSampler(paths, 16, chroma=1.0, pipelines="bicubic")


def test_sampler_halves_the_chroma_of_the_asked_fraction(tiny_run):
    _, opt = tiny_run
    paths = sorted(opt.data.glob("*.png"))
    plain = CropSampler(paths, 16).batch(6, torch.Generator().manual_seed(3))
    assert torch.equal(CropSampler(paths, 16, chroma=1.0).batch(6, torch.Generator().manual_seed(3)),
                       halve_chroma(plain))
    with pytest.raises(ValueError):
        CropSampler(paths, 16, chroma=1.5)


def test_downscaled_crops_shrink_a_larger_region(tmp_path):
    """On a horizontal ramp of one level a pixel, a downscaled crop steps by 1/factor, between 1
    and 1/MIN_SCALE levels; the crops stay uint8 of the crop size, and a flat photo stays flat."""
    ramp = np.broadcast_to(np.arange(200, dtype=np.uint8)[None, :, None], (120, 200, 3))
    Image.fromarray(np.ascontiguousarray(ramp)).save(tmp_path / "ramp.png")
    Image.new("RGB", (120, 120), (40, 90, 200)).save(tmp_path / "flat.png")
    gen = torch.Generator().manual_seed(5)
    crops = CropSampler([tmp_path / "ramp.png"], 32, downscale=1.0).batch(16, gen)
    assert crops.shape == (16, 3, 32, 32) and crops.dtype == torch.uint8
    steps = (crops[..., 4:-4, 9:-4].float() - crops[..., 4:-4, 4:-9].float()).abs().mean((1, 2, 3)) / 5
    assert (steps >= 0.97).all() and (steps <= 1 / MIN_SCALE + 0.03).all() and steps.std() > 0.1
    native = CropSampler([tmp_path / "ramp.png"], 32).batch(4, gen)
    assert ((native[..., 1:].float() - native[..., :-1].float()).abs() == 1).all()
    flat = CropSampler([tmp_path / "flat.png"], 32, downscale=1.0).batch(4, gen)
    assert (flat == torch.tensor([40, 90, 200], dtype=torch.uint8).view(1, 3, 1, 1)).all()
    with pytest.raises(ValueError, match="downscale"):
        CropSampler([tmp_path / "flat.png"], 32, downscale=-0.1)


def test_curve_keeps_its_header_when_resumed(tiny_run):
    """A new curve logs both validation sets; a curve begun before the halved-chroma column keeps
    its five columns."""
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    rows = list(csv.DictReader((run / "curve.csv").open()))
    assert float(rows[-1]["val_chroma_bpsp"]) > 0
    lines = (run / "curve.csv").read_text().splitlines()
    old = [",".join(line.split(",")[:5]) for line in lines]
    (run / "curve.csv").write_text("\n".join(old) + "\n")
    opt.steps = 6
    train(run, opt, log=lambda _: None)
    lines = (run / "curve.csv").read_text().splitlines()
    assert len(lines) == len(old) + 1 and all(line.count(",") == 4 for line in lines)


def test_cli_chroma_is_kept_on_resume_and_changed_when_given(tiny_run):
    run_dir, opt = tiny_run
    args = ["train", str(run_dir), "--data", str(opt.data), "--channels", "8", "--blocks", "1",
            "--components", "2", "--batch", "2", "--crop", "32"]
    for steps, extra, expected in [(2, ["--chroma", "0.5"], (0.5, "bilinear", 0.0, 0.0)),
                                   (4, ["--chroma-pipelines", "mixed"], (0.5, "mixed", 0.0, 0.0)),
                                   (6, ["--soften-chroma", "0.25"], (0.5, "mixed", 0.25, 0.0)),
                                   (8, ["--grain", "0.5"], (0.5, "mixed", 0.25, 0.5)),
                                   (10, [], (0.5, "mixed", 0.25, 0.5)),
                                   (12, ["--chroma", "0"], (0.0, "mixed", 0.25, 0.5))]:
        res = CliRunner().invoke(main, args + ["--steps", str(steps)] + extra)
        assert res.exit_code == 0, res.output
        state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
        options = state["options"]
        assert (state["step"], options.chroma, options.pipelines, options.soften, options.grain) == (steps, *expected)
    for bad in (["--chroma", "2"], ["--chroma-pipelines", "cubic"], ["--soften-chroma", "-1"], ["--grain", "1.5"]):
        res = CliRunner().invoke(main, args + ["--steps", "14"] + bad)
        assert res.exit_code == 2 and bad[0] in res.output


def test_grown_model_computes_what_the_trained_one_did(kodak_crop):
    torch.manual_seed(0)
    shallow = PixelCNN(ModelConfig(channels=8, blocks=1, components=2)).eval()
    deep = PixelCNN(ModelConfig(channels=8, blocks=3, components=2, blend=True)).eval()
    deep.load_state_dict(grown(shallow.state_dict(), deep.cfg))
    x = torch.from_numpy(kodak_crop).permute(2, 0, 1)[None]
    size = shallow.cfg.params_per_pixel
    with torch.no_grad():
        assert torch.equal(deep(x)[:, :size], shallow(x))
        assert not deep(x)[:, size:].any()  # every blend at 0: the network's own means
        assert torch.equal(deep.nll(x), shallow.nll(x))
    with pytest.raises(ValueError, match="blocks"):
        grown(deep.state_dict(), shallow.cfg)
    with pytest.raises(ValueError, match="head outputs"):
        grown(deep.state_dict(), ModelConfig(channels=8, blocks=3, components=2))
    with pytest.raises(ValueError, match="shape"):
        grown(shallow.state_dict(), ModelConfig(channels=16, blocks=3, components=2))


def test_a_model_exported_as_it_was_grown_codes_what_the_shallow_one_did(kodak_crop):
    """Export right after growing: the new identity blocks, whose mix has no weights at all,
    still load (their channels take a usable scale), and the integer model gives exactly the
    shallow integer model's parameters."""
    torch.manual_seed(1)
    shallow = PixelCNN(ModelConfig(channels=8, blocks=1, components=2)).eval()
    deep = PixelCNN(ModelConfig(channels=8, blocks=3, components=2)).eval()
    deep.load_state_dict(grown(shallow.state_dict(), deep.cfg))
    x = torch.from_numpy(kodak_crop)
    got = weights.build(weights.export(deep)).band_params(x, 0)
    assert torch.equal(got, weights.build(weights.export(shallow)).band_params(x, 0))


def test_a_run_can_start_from_a_shallower_one(tiny_run, tmp_path):
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    deeper = dataclasses.replace(opt, config=dataclasses.replace(opt.config, blocks=2), steps=6)
    train(tmp_path / "deeper", deeper, log=lambda _: None, start_from=run)
    state = torch.load(tmp_path / "deeper" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6 and state["options"].config.blocks == 2
    rows = list(csv.DictReader((tmp_path / "deeper" / "curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [6]
    with pytest.raises(ValueError, match="begun"):
        train(tmp_path / "deeper", deeper, log=lambda _: None, start_from=run)


def test_a_compiled_run_trains_the_same_model(tiny_run, tmp_path):
    """``--compile`` changes the speed of a step, not what it computes: the same run, compiled,
    ends at the same weights (to float rounding) in a checkpoint of the same layout."""
    run, opt = tiny_run
    train(run, opt, log=lambda _: None)
    train(tmp_path / "compiled", opt, log=lambda _: None, compiled=True)
    a = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "compiled" / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)


@pytest.mark.skipif(not float_model.BFLOAT16_BACKWARD, reason="this CPU has no native bfloat16")
def test_bfloat16_backward_keeps_the_loss_and_the_gradients(monkeypatch, kodak_crop):
    """Where the CPU multiplies bfloat16 natively, training's convolutions take their backward
    pass in it: the loss is float32's exactly, the gradients within 1 % of float32's (and not
    equal to them: the bfloat16 pass did run)."""
    torch.manual_seed(0)
    net = PixelCNN(ModelConfig(channels=16, blocks=2, components=3, blend=True))
    x = torch.from_numpy(kodak_crop).permute(2, 0, 1)[None]

    def loss_and_gradient() -> tuple[torch.Tensor, torch.Tensor]:
        net.zero_grad()
        loss = net.nll(x).mean()
        loss.backward()
        return loss.detach(), torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])

    loss16, grad16 = loss_and_gradient()
    monkeypatch.setattr(float_model, "BFLOAT16_BACKWARD", False)
    loss32, grad32 = loss_and_gradient()
    assert torch.equal(loss16, loss32)
    assert 0 < float((grad16 - grad32).norm() / grad32.norm()) < 1e-2
