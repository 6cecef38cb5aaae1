"""The fieldseg command: segment equals the Python call, bad inputs write nothing."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from fieldseg_core import cli
from fieldseg_core.datasets import nuclei_2d

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_crop():
    image, _ = nuclei_2d()
    return image[:192, 64:320]                          # uint16, 192 x 256


def _listing(folder):
    return sorted(p.relative_to(folder) for p in Path(folder).rglob("*"))


def test_segment_tiff_equals_python_call(tmp_path, real_crop):
    src = tmp_path / "nuclei.tif"
    tifffile.imwrite(src, real_crop)
    out = tmp_path / "out"
    results = cli.main(["segment", str(src), "--model", "flows_unet", "--out", str(out),
                        "--no-progress"])
    expected = cli.segment_image(real_crop, "flows_unet")
    labels = tifffile.imread(out / "nuclei_labels.tif")
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32 and expected.max() > 5
    assert results[0]["n_cells"] == len(np.unique(expected)) - 1
    with open(out / "nuclei_cells.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == list(np.unique(expected)[1:])
    for r in rows[:5]:
        mask = expected == int(r["id"])
        assert int(r["area"]) == mask.sum()
        np.testing.assert_allclose(float(r["centroid_y"]), np.argwhere(mask)[:, 0].mean(),
                                   atol=1e-3)
    overlay = np.asarray(Image.open(out / "nuclei_overlay.png"))
    assert overlay.shape == real_crop.shape + (3,)


def test_png_channels_and_tiling(tmp_path, real_crop):
    grey = (real_crop / real_crop.max() * 255).astype(np.uint8)
    rgb = np.stack([np.zeros_like(grey), grey, grey // 2], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(tmp_path / "grey.png")
    res = cli.segment_files([tmp_path / "rgb.png"], out_dir=tmp_path / "o1", channel=1,
                            progress=False)
    np.testing.assert_array_equal(res[0]["labels"], cli.segment_image(grey, "flows_unet"))
    # an RGB file whose channels are equal is read as grey without --channel
    np.testing.assert_array_equal(cli.read_image(tmp_path / "grey.png"), grey)
    # tiled (exact overlap) = untiled for a large image
    whole = cli.segment_image(real_crop, "poisson_unet", tile=1024)
    tiled = cli.segment_image(real_crop, "poisson_unet", tile=128)
    np.testing.assert_array_equal(tiled, whole)


def _bad_inputs(tmp_path, real_crop):
    (tmp_path / "garbage.tif").write_bytes(b"this is not a tiff")
    tifffile.imwrite(tmp_path / "stack4d.tif", np.ones((2, 3, 16, 16), np.uint16),
                     photometric="minisblack")
    tifffile.imwrite(tmp_path / "stack3d.tif", np.random.default_rng(0).random((9, 32, 32)))
    tifffile.imwrite(tmp_path / "constant.tif", np.full((64, 64), 7, np.uint16))
    tifffile.imwrite(tmp_path / "line.tif", np.arange(50, dtype=np.uint16))
    folder = tmp_path / "inputs"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", real_crop)
    tifffile.imwrite(folder / "a_labels.tif", real_crop)
    return {
        "unreadable": ([tmp_path / "garbage.tif"], tmp_path / "o", "could not be read"),
        "missing": ([tmp_path / "nope.tif"], tmp_path / "o", "does not exist"),
        "4d": ([tmp_path / "stack4d.tif"], tmp_path / "o", "2D image"),
        "3d stack": ([tmp_path / "stack3d.tif"], tmp_path / "o", "--stack"),
        "1d": ([tmp_path / "line.tif"], tmp_path / "o", "2D image"),
        "constant": ([tmp_path / "constant.tif"], tmp_path / "o", "constant"),
        "overwrite": ([folder / "a.tif", folder / "a_labels.tif"], folder, "overwrite an input"),
        "bad suffix": ([tmp_path / "x.jpg"], tmp_path / "o", "ending in"),
    }


@pytest.mark.parametrize("case", ["unreadable", "missing", "4d", "3d stack", "1d", "constant",
                                  "overwrite", "bad suffix"])
def test_bad_input_is_refused_and_nothing_written(tmp_path, real_crop, case, capsys):
    paths, out, message = _bad_inputs(tmp_path, real_crop)[case]
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, real_crop)
    before = _listing(tmp_path)
    with pytest.raises(ValueError, match=message):
        cli.segment_files([good, *paths], out_dir=out, progress=False)   # good one first
    assert _listing(tmp_path) == before
    with pytest.raises(SystemExit) as exc:
        cli.main(["segment", *map(str, paths), "--out", str(out), "--no-progress"])
    assert exc.value.code == 2 and message.split()[0] in capsys.readouterr().err
    assert _listing(tmp_path) == before


def test_channel_errors(tmp_path, real_crop):
    tifffile.imwrite(tmp_path / "two.tif", np.stack([real_crop, real_crop // 2]),
                     photometric="minisblack")
    assert cli.read_image(tmp_path / "two.tif", channel=1).shape == real_crop.shape
    with pytest.raises(ValueError, match="channel"):
        cli.read_image(tmp_path / "two.tif")
    with pytest.raises(ValueError, match="channel"):
        cli.read_image(tmp_path / "two.tif", channel=2)
    tifffile.imwrite(tmp_path / "one.tif", real_crop)
    with pytest.raises(ValueError, match="single"):
        cli.read_image(tmp_path / "one.tif", channel=1)


def test_train_and_reproduce_subcommands_delegate(capsys):
    for name in ("train", "reproduce"):
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        assert f"python -m fieldseg_core.{name}" in capsys.readouterr().out


def test_module_form_runs(tmp_path, real_crop):
    tifffile.imwrite(tmp_path / "n.tif", real_crop[:96, :96])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "fieldseg_core.cli", "segment",
                           str(tmp_path / "n.tif"), "--out", str(tmp_path / "o"),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "n_labels.tif").exists() and "cells" in done.stdout


def test_stack_is_segmented_slice_by_slice_and_stitched(tmp_path):
    from fieldseg_core import pretrained
    from fieldseg_core.datasets import normalize_percentile, nuclei_3d
    from fieldseg_core.dynamics import stitch_3d
    from fieldseg_core.predict import predict_instances

    volume, _ = nuclei_3d()
    tifffile.imwrite(tmp_path / "vol.tif", volume)
    res = cli.main(["segment", str(tmp_path / "vol.tif"), "--stack", "--out", str(tmp_path / "o"),
                    "--no-progress"])
    labels = tifffile.imread(tmp_path / "o" / "vol_labels.tif")
    assert labels.shape == volume.shape and res[0]["n_cells"] == labels.max() > 0
    # the stitched per-slice segmentation, with one intensity scale for the whole stack
    model = pretrained.load("flows_unet")
    norm = normalize_percentile(volume)
    slices = np.stack([predict_instances(model, plane) for plane in norm])
    np.testing.assert_array_equal(labels, stitch_3d(slices, iou_threshold=0.25))
    z_extent = [len(np.unique(np.nonzero(labels == i)[0])) for i in range(1, labels.max() + 1)]
    assert max(z_extent) > 3                            # objects span several slices
    with open(tmp_path / "o" / "vol_cells.csv") as f:
        header = f.readline().strip().split(",")
    assert header == ["id", "area", "centroid_z", "centroid_y", "centroid_x"]
    with pytest.raises(ValueError, match="TIFF"):
        cli.read_image(tmp_path / "o" / "vol_overlay.png", stack=True)
    tifffile.imwrite(tmp_path / "flat.tif", volume[0])
    with pytest.raises(ValueError, match="3D"):
        cli.read_image(tmp_path / "flat.tif", stack=True)


def _chunk_scores(truth, pred):
    from fieldseg_core.metrics import average_precision

    return average_precision(truth, pred, 0.9)[0], len(np.unique(pred)) - 1


def test_chunked_segment_matches_single_pass(tmp_path, real_crop):
    # Blocks of 96 px cut many nuclei; the merge must give back the single-pass cells.
    src = tmp_path / "nuclei.tif"
    tifffile.imwrite(src, real_crop)
    results = cli.main(["segment", str(src), "--out", str(tmp_path / "out"), "--chunk-size", "96",
                        "--no-progress"])
    import zarr

    labels = np.asarray(zarr.open_array(tmp_path / "out" / "nuclei_labels.zarr", mode="r"))
    single = cli.segment_image(real_crop, "flows_unet")
    ap, n = _chunk_scores(single, labels)
    assert ap == 1.0 and n == len(np.unique(single)) - 1
    assert results[0]["n_cells"] == n
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nuclei_labels.zarr"]


def test_zarr_input_takes_the_chunked_path(tmp_path, real_crop):
    import zarr

    src = tmp_path / "slide.zarr"
    zarr.save_array(str(src), real_crop)
    res = cli.segment_files([src], out_dir=tmp_path / "o", progress=False)
    assert res[0]["labels_path"].endswith("slide_labels.zarr")
    labels = np.asarray(zarr.open_array(res[0]["labels_path"], mode="r"))
    ap, n = _chunk_scores(cli.segment_image(real_crop, "flows_unet"), labels)
    assert ap == 1.0 and n == res[0]["n_cells"]


@pytest.mark.parametrize("case", ["constant", "3d", "chunk_grid", "exists"])
def test_chunked_bad_input_writes_nothing(tmp_path, real_crop, case):
    import zarr

    src = tmp_path / "in.zarr"
    array = {"constant": np.full((64, 64), 7.0), "3d": np.zeros((4, 64, 64)) + np.arange(64)}
    zarr.save_array(str(src), array.get(case, real_crop))
    out = tmp_path / "out"
    if case == "exists":
        (out / "in_labels.zarr").mkdir(parents=True)
    before = _listing(tmp_path)
    kwargs = {"chunk_size": 90} if case == "chunk_grid" else {}
    with pytest.raises(ValueError, match={"constant": "constant", "3d": "2D",
                                          "chunk_grid": "chunk_size", "exists": "exists"}[case]):
        cli.segment_files([src], out_dir=out, progress=False, **kwargs)
    assert _listing(tmp_path) == before
