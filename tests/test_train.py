"""Tests for fieldseg_core.train: schedule, losses, training, resuming, the CLI (tiny, CPU)."""

import csv
import math

import pytest
import torch

from fieldseg_core.data import SyntheticCells
from fieldseg_core.losses import field_l1_loss, flow_loss, unified_sdf_loss
from fieldseg_core.models import build_model
from fieldseg_core.train import (
    CosineWarmup,
    cosine_warmup_schedule,
    load_model,
    loss_for,
    main,
    train,
)

TINY = dict(widths=(4, 8), groups=2)
SMALL = dict(shape=(32, 32), n_cells_range=(2, 3), radius_range=(4, 6))


def _model(representation, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_model(representation, **TINY, **kwargs)


def _batch(dataset):
    images, targets = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), torch.stack(targets)


# --------------------------------------------------------------------------
# schedule
# --------------------------------------------------------------------------

def _rates(warmup, total, final, steps, lr=0.1):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = cosine_warmup_schedule(opt, warmup, total, final)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_schedule_values_by_hand():
    rates = _rates(warmup=4, total=10, final=0.01, steps=13)
    expected = {0: 0.025, 1: 0.05, 3: 0.1, 4: 0.1,
                7: 0.1 * (0.01 + 0.99 * 0.5),                        # half way: cos = 0
                6: 0.1 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 3))),
                10: 0.001, 12: 0.001}                                # 1 % from the end on
    for step, value in expected.items():
        assert rates[step] == pytest.approx(value, rel=1e-12), step


def test_schedule_without_warmup_starts_at_the_peak_and_decays():
    rates = _rates(warmup=0, total=5, final=0.0, steps=6, lr=1.0)
    assert rates[0] == 1.0 and rates[5] == pytest.approx(0.0, abs=1e-15)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_schedule_state_is_plain_and_restorable():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = cosine_warmup_schedule(opt, 3, 9)
    state = sched.state_dict()
    assert state["lr_lambdas"][0] == {"warmup_steps": 3, "total_steps": 9, "final_fraction": 0.01}
    assert CosineWarmup(3, 9)(5) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 3)))


def test_schedule_rejects_bad_arguments():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        cosine_warmup_schedule(opt, 5, 3)
    with pytest.raises(ValueError, match="final_fraction"):
        cosine_warmup_schedule(opt, 1, 3, final_fraction=1.5)
    with pytest.raises(TypeError, match="optimizer"):
        cosine_warmup_schedule("adam", 1, 3)


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------

@pytest.mark.parametrize("representation", ["poisson", "flows", "sdf"])
def test_loss_for_is_the_representations_loss(representation):
    ds = SyntheticCells(2, representation, augment=False, **SMALL)
    images, targets = _batch(ds)
    model = _model(representation)
    output = model(images)
    value = loss_for(representation)(output, targets, model)
    if representation == "poisson":
        expected = field_l1_loss(output, targets)
    elif representation == "flows":
        expected = flow_loss(output, targets[:, :2], targets[:, 2:])
    else:
        expected = unified_sdf_loss(output, targets, model.sigmoid, reduction="mean")[0]
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_sdf_loss_trains_the_learnable_sigmoid():
    ds = SyntheticCells(2, "sdf", augment=False, **SMALL)
    images, targets = _batch(ds)
    images, targets = images.double(), targets.double()
    model = _model("sdf").double()
    loss_for("sdf")(model(images), targets, model).backward()
    # The gradient the training step uses equals a finite difference of the loss.
    for param in (model.sigmoid.alpha, model.sigmoid.beta):
        h = 1e-6
        with torch.no_grad():
            param += h
            up = loss_for("sdf")(model(images), targets, model).item()
            param -= 2 * h
            down = loss_for("sdf")(model(images), targets, model).item()
            param += h
        assert param.grad.item() == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_loss_for_rejects_unknown_representation():
    with pytest.raises(ValueError, match="representation"):
        loss_for("mse")


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------

@pytest.mark.parametrize("representation", ["edt", "flows", "sdf"])
def test_training_lowers_the_loss(representation):
    ds = SyntheticCells(8, representation, seed=3, augment=False, **SMALL)
    images, targets = _batch(ds)
    model = _model(representation)
    loss = loss_for(representation)
    with torch.no_grad():
        before = float(loss(model(images), targets, model))
    history = train(model, ds, epochs=6, batch_size=4, lr=1e-2, device="cpu", progress=False)
    with torch.no_grad():
        after = float(loss(model(images), targets, model))
    assert after < 0.8 * before
    assert [row["epoch"] for row in history] == list(range(1, 7))
    assert all(math.isfinite(row["train_loss"]) and row["seconds"] >= 0 for row in history)
    assert history[-1]["lr"] < history[0]["lr"]


def _run(tmp_path, name, **kwargs):
    ds = SyntheticCells(6, "sdf", seed=1, **SMALL)
    model = _model("sdf", dropout=0.2)          # dropout: the random state must resume too
    history = train(model, ds, epochs=2, batch_size=4, device="cpu", progress=False,
                    out_dir=tmp_path / name, **kwargs)
    return model, history


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    straight, h_straight = _run(tmp_path, "straight")
    first, _ = _run(tmp_path, "split", stop_after=1)
    after_one = {k: v.clone() for k, v in first.state_dict().items()}
    resumed, h_resumed = _run(tmp_path, "split", resume=True)
    state, expected = resumed.state_dict(), straight.state_dict()
    assert state.keys() == expected.keys()
    for key in expected:
        assert torch.equal(state[key], expected[key]), key
    # the check has teeth: the second epoch did change the weights
    assert any(not torch.equal(after_one[k], expected[k]) for k in expected)
    assert [r["train_loss"] for r in h_resumed] == [r["train_loss"] for r in h_straight]


def test_checkpoint_loads_with_weights_only(tmp_path):
    model, history = _run(tmp_path, "ckpt")
    state = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "history", "rng"} <= set(state)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert torch.equal(state["model"]["sigmoid.alpha"], model.sigmoid.alpha.detach())
    with open(tmp_path / "ckpt" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) == pytest.approx(history[1]["train_loss"])


def test_resume_with_other_settings_is_refused(tmp_path):
    _run(tmp_path, "run", stop_after=1)
    ds = SyntheticCells(6, "sdf", seed=1, **SMALL)
    with pytest.raises(ValueError, match="lr"):
        train(_model("sdf", dropout=0.2), ds, epochs=2, batch_size=4, lr=5e-3, device="cpu",
              progress=False, out_dir=tmp_path / "run", resume=True)


def test_evaluation_enters_the_history():
    ds = SyntheticCells(4, "edt", seed=0, **SMALL)
    held_out = SyntheticCells(2, "edt", seed=9, augment=False, **SMALL)
    history = train(_model("edt"), ds, epochs=2, batch_size=4, device="cpu", progress=False,
                    eval_dataset=held_out, eval_every=2)
    assert "eval_ap50" not in history[0]
    for key in ("eval_iou", "eval_dice", "eval_pq", "eval_sq", "eval_rq", "eval_ap50"):
        assert 0.0 <= history[1][key] <= 1.0


def test_train_rejects_bad_arguments(tmp_path):
    ds = SyntheticCells(2, "edt", **SMALL)
    model = _model("edt")
    with pytest.raises(ValueError, match="epochs"):
        train(model, ds, epochs=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match="stop_after"):
        train(model, ds, epochs=2, stop_after=3, device="cpu", progress=False)
    with pytest.raises(ValueError, match="out_dir"):
        train(model, ds, epochs=1, resume=True, device="cpu", progress=False)
    with pytest.raises(ValueError, match="device"):
        train(model, ds, epochs=1, device="gpu0", progress=False)
    with pytest.raises(ValueError, match="loss"):
        train(torch.nn.Conv2d(1, 1, 3), ds, epochs=1, device="cpu", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="amp"):
            train(model, ds, epochs=1, device="cpu", amp=True, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_training_on_cuda():
    ds = SyntheticCells(4, "flows", **SMALL)
    history = train(_model("flows"), ds, epochs=1, batch_size=2, device="cuda", amp=True,
                    progress=False)
    assert math.isfinite(history[0]["train_loss"])


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def test_cli_writes_checkpoint_and_history(tmp_path):
    out = tmp_path / "cli"
    history = main(["--representation", "flows", "--epochs", "1", "--out", str(out),
                    "--n-train", "4", "--n-eval", "1", "--size", "32", "--batch-size", "2",
                    "--widths", "4,8", "--device", "cpu", "--no-progress"])
    assert len(history) == 1
    with open(out / "history.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert {"epoch", "train_loss", "lr", "seconds", "eval_ap50"} <= set(reader.fieldnames)
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["model_config"] == {"representation": "flows", "arch": "unet", "widths": [4, 8]}
    model = load_model(out)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["model"][key])
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_cli_rejects_a_bad_representation(tmp_path):
    with pytest.raises(SystemExit):
        main(["--representation", "watershed", "--out", str(tmp_path)])
