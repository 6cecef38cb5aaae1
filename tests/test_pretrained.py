"""Shipped pretrained models: hashes, loading, accuracy on synthetic scenes, recorded commands."""

import shlex
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from fieldseg_core import pretrained
from fieldseg_core.data import SyntheticCells
from fieldseg_core.predict import evaluate_model

ROOT = Path(__file__).resolve().parents[1]


def test_available_lists_flows_and_a_scalar_field():
    names = pretrained.available()
    reps = {pretrained.info(n)["representation"] for n in names}
    assert "flows" in reps and reps & {"poisson", "diffusion", "edt", "sdf"}
    assert names == sorted(p.name for p in pretrained.MODEL_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", pretrained.available())
def test_record_matches_the_file(name):
    rec = pretrained.info(name)
    path = pretrained.MODEL_DIR / name / "checkpoint.pt"
    assert rec["sha256"] == pretrained.REGISTRY[name] == pretrained.sha256(path)
    assert rec["bytes"] == path.stat().st_size <= 2_000_000
    assert (pretrained.MODEL_DIR / name / "history.csv").exists()
    state = torch.load(path, weights_only=True)
    assert state["model_config"] == rec["model_config"]
    assert state["config"]["seed"] == 0 and len(state["history"]) == state["config"]["epochs"]


@pytest.mark.parametrize("name", pretrained.available())
def test_recorded_command_runs_in_both_clis(name, monkeypatch):
    from fieldseg_core import cli, train

    cmd = pretrained.info(name)["command"]
    args = shlex.split(cmd)
    assert args[:3] == ["python", "-m", "fieldseg_core.train"]
    ns = train._parser().parse_args(args[3:])
    rec = pretrained.info(name)
    assert ns.seed == 0 and ns.representation == rec["representation"]
    assert ns.epochs == rec["train_config"]["epochs"] and ns.lr == rec["train_config"]["lr"]
    assert [int(w) for w in ns.widths.split(",")] == rec["model_config"]["widths"]
    # the same command through the console script: `fieldseg train ...` hands it over unchanged
    seen = []
    monkeypatch.setattr(train, "main", lambda argv=None: seen.append(argv))
    cli.main(["train", *args[3:]])
    assert seen == [args[3:]]


@pytest.mark.parametrize("name", pretrained.available())
def test_pretrained_segments_a_synthetic_scene(name):
    model = pretrained.load(name)
    assert not model.training and model.pretrained_name == name
    rep = pretrained.info(name)["representation"]
    scenes = SyntheticCells(4, rep, shape=(96, 96), seed=2024, augment=False,
                            radius_range=(7.0, 12.0))
    scores = evaluate_model(model, scenes)
    assert scores["ap50"] >= 0.9


def test_corrupted_copy_is_refused(tmp_path, monkeypatch):
    name = pretrained.available()[0]
    src = pretrained.MODEL_DIR / name
    bad = tmp_path / name
    shutil.copytree(src, bad)
    data = bytearray((bad / "checkpoint.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF                       # one flipped byte in the weights
    (bad / "checkpoint.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        pretrained.load(bad, expected_sha256=pretrained.REGISTRY[name])
    monkeypatch.setattr(pretrained, "MODEL_DIR", tmp_path)
    with pytest.raises(ValueError, match="corrupted"):
        pretrained.load(name)


def test_load_uses_weights_only(monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    pretrained.load(pretrained.available()[0])
    assert calls == [True]


def test_load_checkpoint_path_and_bad_names(tmp_path):
    name = pretrained.available()[0]
    a = pretrained.load(name)
    b = pretrained.load(pretrained.MODEL_DIR / name)          # a folder with checkpoint.pt
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="pretrained models"):
        pretrained.load("no_such_model")
    with pytest.raises(TypeError, match="name_or_path"):
        pretrained.load(3)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        pretrained.load(tmp_path / "junk.pt")


def test_package_data_declares_the_checkpoints():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = conf["tool"]["setuptools"]["package-data"]["fieldseg_core"]
    pkg = ROOT / "fieldseg_core"
    declared = {p for g in globs for p in pkg.glob(g)}
    shipped = {p for p in pretrained.MODEL_DIR.rglob("*") if p.is_file()}
    assert shipped and shipped <= declared
    assert conf["project"]["scripts"]["fieldseg"] == "fieldseg_core.cli:main"
    assert np.all([p.suffix in (".pt", ".json", ".csv") for p in shipped])


def test_list_command_prints_every_model(capsys):
    pretrained.main(["list"])
    out = capsys.readouterr().out
    for name in pretrained.available():
        assert name in out and pretrained.REGISTRY[name] in out
        assert pretrained.info(name)["command"] in out
    assert pretrained._command_args(pretrained.info(name)["command"])[0] == "--representation"
    with pytest.raises(ValueError, match="must start with"):
        pretrained._command_args("python train.py --seed 0")
