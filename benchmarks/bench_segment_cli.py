"""Segmenting the real nuclei image with the shipped models, fine-tuning for chapter 10, tiling error.

Measurements (CPU, and CUDA when present):

- model load time of each shipped model (``pretrained.load``, hash check included);
- wall time of ``fieldseg segment`` on the 512 x 512 real image *after*
  model load (:func:`fieldseg_core.cli.segment_files` with a loaded model:
  read, normalise, predict, post-process, write the three files), median of
  ``--repeats``, split into the network pass and the post-processing
  (target: <= 2 s on a CPU);
- one fine-tuning run at chapter 10's default settings (full fine-tuning on
  four training crops, 120 steps; target: <= 60 s on a CPU);
- the tiling error of the flow model on the real image: with the exact
  overlap (``predict.exact_overlap``) and with the default overlap of 32 px,
  the largest difference to untiled prediction against the distance to the
  nearest seam.

Prints tables; asserts nothing.

Run: ``python benchmarks/bench_segment_cli.py [--repeats 3] [--threads N] [--device cuda]``
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from fieldseg_core import cli, pretrained, transfer
from fieldseg_core.datasets import normalize_percentile, nuclei_2d, nuclei_2d_split
from fieldseg_core.models import receptive_field_margin
from fieldseg_core.predict import (exact_overlap, predict_representation, seam_distance,
                                   to_instances)


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def bench_segment(device, repeats):
    image, _ = nuclei_2d()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "nuclei.tif"
        tifffile.imwrite(src, image)
        for name in pretrained.available():
            t0 = time.perf_counter()
            model = pretrained.load(name, device=device)
            load_s = time.perf_counter() - t0
            cli.segment_files([src], model=model, out_dir=Path(tmp) / "warm", device=device,
                              progress=False)                     # warm-up
            total, net, post = [], [], []
            norm = normalize_percentile(image)
            for r in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                res = cli.segment_files([src], model=model, out_dir=Path(tmp) / f"o{r}",
                                        device=device, progress=False)
                _sync(device)
                total.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                out = predict_representation(model, norm)
                _sync(device)
                net.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                to_instances(out, model.representation)
                post.append(time.perf_counter() - t0)
            rows.append((name, load_s, statistics.median(total), statistics.median(net),
                         statistics.median(post), res[0]["n_cells"]))
    print(f"\nfieldseg segment, 512 x 512 real image, device {device} (median of {repeats})")
    print(f"{'model':14s} {'load s':>7s} {'segment s':>10s} {'network s':>10s} {'post s':>8s} {'cells':>6s}")
    for name, load_s, tot, n, p, cells in rows:
        print(f"{name:14s} {load_s:7.2f} {tot:10.2f} {n:10.3f} {p:8.3f} {cells:6d}")


def bench_fine_tune(device):
    split = nuclei_2d_split()
    crops = split["train"][:4]
    pm = pretrained.load("flows_unet", device=device)
    t0 = time.perf_counter()
    model, hist = transfer.fine_tune(pm, [c.image for c in crops], [c.labels for c in crops],
                                     setting="full", epochs=30, n_items=16, batch_size=4,
                                     patch=64, device=device)
    seconds = time.perf_counter() - t0
    scores = transfer.score_crops(model, split["test"])
    print(f"\nfine-tuning (chapter 10 defaults: full, 4 crops, 30 epochs x 16 patches of 64 px, "
          f"batch 4), device {device}: {seconds:.1f} s, test AP50 {scores['ap50']:.3f}")


def bench_tiling():
    image, _ = nuclei_2d()
    norm = normalize_percentile(image)
    model = pretrained.load("flows_unet")
    margin, overlap = receptive_field_margin(model), exact_overlap(model)
    whole = predict_representation(model, norm)
    exact = predict_representation(model, norm, tile=128, overlap="exact")
    default = predict_representation(model, norm, tile=128, overlap=32)
    err = np.abs(default - whole).max(axis=0)
    dist = seam_distance(norm.shape, 128, 32, multiple=4)
    print(f"\ntiling, flows_unet on the real image, tiles of 128 px: margin {margin} px")
    print(f"  exact overlap {overlap} px: max |tiled - untiled| = {np.abs(exact - whole).max():.2e}")
    print(f"  default overlap 32 px: max error {err.max():.2e}; by distance to the nearest seam:")
    for lo, hi in ((0, 0), (1, 3), (4, 7), (8, 11), (12, 15), (16, margin), (margin + 1, 10**6)):
        sel = (dist >= lo) & (dist <= hi)
        if sel.any():
            print(f"    {lo:3d}-{min(hi, int(dist[np.isfinite(dist)].max())):3d} px: "
                  f"max {err[sel].max():.2e}, mean {err[sel].mean():.2e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None, help="default: cpu, then cuda when present")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available()
                                                           else [])
    for device in devices:
        bench_segment(device, args.repeats)
        bench_fine_tune(device)
    bench_tiling()
    if "cuda" not in devices:
        print("\nno CUDA device: GPU figures not measured")


if __name__ == "__main__":
    main()
