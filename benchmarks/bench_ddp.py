"""Data-parallel training throughput: images/s with 1 and 2 CPU processes (gloo), GPUs when present.

Measurements:

- images/s of :func:`fieldseg_core.train.train` at the CLI's default
  configuration (``python -m fieldseg_core.train --representation poisson``:
  128 synthetic images of 64 x 64 px, batch 8 per process, U-Net widths 8, 16,
  32), one thread per process: a plain one-process run, then
  ``python -m torch.distributed.run --standalone --nproc_per_node=2`` (DDP over
  gloo, each process reading half of every epoch). The targets are computed
  before the clock starts (the dataset caches them), so the figure is pure
  training: ``128 x epochs / seconds`` over ``--epochs`` epochs after one
  warm-up epoch;
- with CUDA and ``--gpus N`` > 0: the same with NCCL on N GPUs (skipped, and
  said so, without a GPU).

On a 2-core machine, 2 processes can at best double the images/s of one
process; other load on the machine makes the figure noisy.

Run: ``python benchmarks/bench_ddp.py [--epochs 3] [--gpus 0]``
"""

import argparse
import json
import os
import subprocess
import sys
import time


def worker(args):
    """One rank (or the only process): train, rank 0 prints a JSON line."""
    import torch

    from fieldseg_core.data import SyntheticCells
    from fieldseg_core.distributed import launch_info
    from fieldseg_core.models import build_model
    from fieldseg_core.train import train

    torch.set_num_threads(1)
    ds = SyntheticCells(args.n_train, "poisson", shape=(64, 64), seed=0, augment=True,
                        kinds=("disk", "ellipse", "rod"), radius_range=(5.0, 9.0))
    for i in range(len(ds)):  # fill the target cache: time training only
        ds.sample(i)
    torch.manual_seed(0)
    model = build_model("poisson", widths=(8, 16, 32))
    device = args.device
    history = train(model, ds, epochs=args.epochs + 1, batch_size=8, device=device,
                    progress=False, seed=0)
    if launch_info().rank == 0:
        seconds = sum(row["seconds"] for row in history[1:])
        print(json.dumps({"images_per_s": args.n_train * args.epochs / seconds,
                          "epochs": args.epochs, "seconds": seconds}))


def launch(nproc, args, device):
    base = [__file__, "--worker", "--epochs", str(args.epochs), "--n-train", str(args.n_train),
            "--device", device]
    if nproc == 0:  # plain process, no torchrun
        cmd = [sys.executable] + base
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}"] + base
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    return {**json.loads(lines[-1]), "wall": wall}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-train", type=int, default=128)
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--worker", action="store_true")
    args = p.parse_args()
    if args.worker:
        return worker(args)

    import torch

    from fieldseg_core import viz

    rows = []
    one = launch(0, args, "cpu")
    rows.append(["1 process (plain python)", "cpu", f"{one['images_per_s']:.1f}", "1.00",
                 f"{one['wall']:.1f}"])
    two = launch(2, args, "cpu")
    rows.append(["2 processes (torchrun, gloo)", "cpu", f"{two['images_per_s']:.1f}",
                 f"{two['images_per_s'] / one['images_per_s']:.2f}", f"{two['wall']:.1f}"])
    if args.gpus > 0 and torch.cuda.is_available():
        g1 = launch(1, args, "cuda")
        rows.append(["1 GPU (torchrun, NCCL)", "cuda", f"{g1['images_per_s']:.1f}", "-",
                     f"{g1['wall']:.1f}"])
        if args.gpus > 1:
            gn = launch(args.gpus, args, "cuda")
            rows.append([f"{args.gpus} GPUs (torchrun, NCCL)", "cuda",
                         f"{gn['images_per_s']:.1f}",
                         f"{gn['images_per_s'] / g1['images_per_s']:.2f} (vs 1 GPU)",
                         f"{gn['wall']:.1f}"])
    print(f"training images/s, CLI default model and data, {args.epochs} timed epochs "
          f"of {args.n_train} images, batch 8 per process, 1 thread per process")
    print(viz.table(["run", "device", "images/s", "speed-up", "wall (s)"], rows).data)
    if args.gpus > 0 and not torch.cuda.is_available():
        print("GPU runs skipped: no CUDA device")


if __name__ == "__main__":
    main()
