"""Training throughput of the field-regression U-Net on CPU and, when present, on CUDA.

Measurements:

- images/s of one training step (forward, loss, backward, AdamW step) of the
  model the CLI builds by default (``build_model(representation,
  widths=(8, 16, 32))``) on ``--size`` x ``--size`` crops (128 by default),
  batch ``--batch-size`` (8), on the CPU: median over ``--steps`` timed
  steps after a few warm-up steps;
- the same on CUDA in float32 and with mixed precision (bfloat16 autocast of
  the forward pass, loss in float32, as :func:`fieldseg_core.train.train`
  does), and the AMP / fp32 speed-up (target >= 2x); "no CUDA device"
  otherwise;
- wall time of the epochs of the CLI default configuration on the CPU
  (``python -m fieldseg_core.train --representation poisson``: 128 images of
  64 x 64 px, batch 8), run for two epochs: the first also computes the
  targets (they are cached), the second is pure training.

The batch is one fixed batch of :class:`~fieldseg_core.data.SyntheticCells`
items, so target computation is not timed in the step measurements.
Prints a table; asserts nothing.

CPU timings of a model this small are sensitive to other load on the
machine: with two or more intra-op threads, a busy machine can make every
step many times slower (threads wait for each other at every operation).
``--threads 1`` gives steadier numbers there.

Run: ``python benchmarks/bench_train.py [--steps 20] [--batch-size 8] [--size 128] [--threads N]``
(add ``--widths 32,64,128,256`` to see how the GPU speed-up grows with the
model: the default model is so small that a GPU spends most of a step
launching kernels, whatever their precision).
"""

import argparse
import contextlib
import tempfile
import time

import numpy as np
import torch

from fieldseg_core import data, models, train

WARMUP = 3
CLI_DEFAULT_WIDTHS = (8, 16, 32)


def fixed_batch(representation, batch_size, size, seed=0):
    ds = data.SyntheticCells(batch_size, representation, shape=(size, size), seed=seed,
                             radius_range=(5.0, 9.0) if size < 96 else (7.0, 12.0))
    images, targets = zip(*(ds[i] for i in range(batch_size)))
    return torch.stack(images), torch.stack(targets)


def step_times(representation, widths, batch, device, amp_dtype, steps, seed=0):
    """Seconds per training step (median), as in the inner loop of ``train.train``."""
    torch.manual_seed(seed)
    model = models.build_model(representation, widths=widths).to(device).train()
    loss_fn = train.loss_for(representation)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    images, targets = (t.to(device) for t in batch)
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def one_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            output = model(images)
        loss = loss_fn(output.float(), targets, model)
        loss.backward()
        optimizer.step()

    for _ in range(WARMUP):
        one_step()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        one_step()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cli_epoch_seconds(representation="poisson"):
    """Per-epoch wall times of the CLI defaults on the CPU (two epochs)."""
    with tempfile.TemporaryDirectory() as out:
        history = train.main(["--representation", representation, "--epochs", "2",
                              "--out", out, "--device", "cpu", "--no-progress"])
    return [row["seconds"] for row in history]


def row(what, value, note=""):
    print(f"{what:<54}{value:>16}  {note}")


def parse_widths(text):
    return tuple(int(v) for v in text.split(",") if v.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="crop side length")
    parser.add_argument("--representation", default="poisson", choices=models.REPRESENTATIONS)
    parser.add_argument("--widths", default=",".join(map(str, CLI_DEFAULT_WIDTHS)),
                        help="U-Net level widths (default: the CLI default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--skip-cli", action="store_true", help="skip the CLI epoch timing")
    args = parser.parse_args()
    if args.steps < 1 or args.batch_size < 1 or args.size < 8:
        parser.error("--steps and --batch-size must be >= 1 and --size >= 8")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    widths = parse_widths(args.widths)

    batch = fixed_batch(args.representation, args.batch_size, args.size)
    n_params = models.count_parameters(models.build_model(args.representation, widths=widths))
    print(f"{args.representation}, widths {widths} ({n_params:,} parameters), "
          f"batch {args.batch_size} x {args.size}x{args.size}, median of {args.steps} steps "
          f"after {WARMUP} warm-up steps; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'measurement':<54}{'value':>16}")

    cpu = step_times(args.representation, widths, batch, torch.device("cpu"), None, args.steps)
    row("CPU fp32 training step", f"{cpu * 1e3:.1f} ms")
    row("CPU fp32 throughput", f"{args.batch_size / cpu:.1f} img/s")

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        # float16 (GPUs without bfloat16) would need a gradient scaler to train; timing is unaffected.
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        print(f"CUDA device: {torch.cuda.get_device_name(gpu)}")
        fp32 = step_times(args.representation, widths, batch, gpu, None, args.steps)
        amp = step_times(args.representation, widths, batch, gpu, amp_dtype, args.steps)
        row("GPU fp32 throughput", f"{args.batch_size / fp32:.1f} img/s")
        row(f"GPU AMP ({str(amp_dtype).replace('torch.', '')}) throughput",
            f"{args.batch_size / amp:.1f} img/s")
        speedup = fp32 / amp
        row("AMP / fp32 speed-up", f"{speedup:.2f}x",
            "target >= 2x: " + ("ok" if speedup >= 2 else "NO"))
        row("GPU fp32 / CPU speed-up", f"{cpu / fp32:.1f}x")
    else:
        print("no CUDA device: GPU fp32 and mixed-precision timings skipped")

    if not args.skip_cli:
        seconds = cli_epoch_seconds()
        row("CLI defaults, CPU epoch 1 (with target computation)", f"{seconds[0]:.2f} s")
        row("CLI defaults, CPU epoch 2 (targets cached)", f"{seconds[1]:.2f} s")


if __name__ == "__main__":
    main()
