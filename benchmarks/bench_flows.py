"""Speed of flow construction, mask recovery, DBSCAN and Euler integration.

Targets (2-core CPU):

- ``heat_flows`` on the 512x512 scene with ~100 touching ellipses: <= 0.5 s;
- ``masks_from_flows`` (defaults) on the ideal heat flows of that scene:
  <= 0.3 s, with AP@0.9 = 1.0;
- ``heat_flows`` on the 64x128x128 volume with ~100 ellipsoids: <= 2.5 s;
- ``cluster_dbscan`` vs plain ``sklearn.cluster.DBSCAN`` on all rounded end
  points of the converged 512x512 image: >= 10x faster, identical partitions;
- ``follow_flows`` on CUDA vs CPU, when a CUDA device is present.

Prints a table (median of ``--repeat`` runs after one warm-up run); asserts
nothing. The plain scikit-learn DBSCAN is run once only: on ~160k points
piled on ~100 sinks it stores every point's neighbour list (a few GB).

Run: ``python benchmarks/bench_flows.py [--repeat 5]``
"""

import argparse
import time

import numpy as np

from fieldseg_core import dynamics, flows, metrics, synthetic


def median_time(fn, repeat, warmup=True):
    if warmup:
        fn()  # imports, caches, torch start-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def row(what, value, target, ok, unit="s"):
    shown = f"{value:.3f} {unit}" if isinstance(value, float) else str(value)
    print(f"{what:<58}{shown:>14}{target:>14}  {'ok' if ok else 'NO'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-sklearn", action="store_true",
                        help="skip the plain scikit-learn DBSCAN run (needs a few GB of RAM)")
    args = parser.parse_args()

    _, labels2 = synthetic.benchmark_scene(2, seed=0)
    _, labels3 = synthetic.benchmark_scene(3, seed=0)
    fg2 = labels2 > 0
    print(f"2D scene {labels2.shape}, {labels2.max()} cells, {fg2.sum()} foreground px; "
          f"3D scene {labels3.shape}, {labels3.max()} cells")
    print(f"{'measurement (median of %d)' % args.repeat:<58}{'value':>14}{'target':>14}  ok")

    t = median_time(lambda: flows.heat_flows(labels2), args.repeat)
    row("heat_flows 512x512", t, "<= 0.5 s", t <= 0.5)

    ideal = flows.heat_flows(labels2)
    t = median_time(lambda: dynamics.masks_from_flows(ideal, fg2, device="cpu"), args.repeat)
    row("masks_from_flows (defaults, CPU) on ideal heat flows", t, "<= 0.3 s", t <= 0.3)
    pred = dynamics.masks_from_flows(ideal, fg2, device="cpu")
    ap90 = float(metrics.average_precision(labels2, pred, thresholds=0.9)[0])
    row("  its AP@0.9", f"{ap90:.3f}", "1.0", ap90 == 1.0)

    t = median_time(lambda: flows.heat_flows(labels3), max(1, min(args.repeat, 3)))
    row("heat_flows 64x128x128", t, "<= 2.5 s", t <= 2.5)

    # DBSCAN on the converged end points (rounded to the grid, Algorithm 1 of Le & Nguyen)
    final = dynamics.follow_flows(ideal, fg2, n_iter=200, device="cpu")
    eps, min_samples = 2.2, 15
    rounded = np.rint(final.astype(np.float64))
    n_unique = len(np.unique(rounded, axis=0))
    t_fast = median_time(lambda: dynamics.cluster_dbscan(final, eps, min_samples), args.repeat)
    row(f"cluster_dbscan, {len(final)} points on {n_unique} grid positions", t_fast, "", True)
    if args.skip_sklearn:
        print("plain sklearn DBSCAN skipped (--skip-sklearn)")
    else:
        from sklearn.cluster import DBSCAN

        t0 = time.perf_counter()
        plain = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(rounded)
        t_plain = time.perf_counter() - t0
        row("sklearn DBSCAN on all rounded points (1 run)", t_plain, "", True)
        speedup = t_plain / t_fast
        row("  speed-up of cluster_dbscan", f"{speedup:.1f}x", ">= 10x", speedup >= 10)
        same = np.array_equal(dynamics.cluster_dbscan(final, eps, min_samples), plain)
        row("  labels identical to sklearn's", str(same), "True", same)

    import torch

    if torch.cuda.is_available():
        def run(device):
            dynamics.follow_flows(ideal, fg2, n_iter=200, device=device)
            if device == "cuda":
                torch.cuda.synchronize()

        t_cpu = median_time(lambda: run("cpu"), args.repeat)
        t_gpu = median_time(lambda: run("cuda"), args.repeat)
        row("follow_flows 200 steps, CPU", t_cpu, "", True)
        row(f"follow_flows 200 steps, CUDA ({torch.cuda.get_device_name()})", t_gpu, "", True)
        row("  CUDA speed-up", f"{t_cpu / t_gpu:.1f}x", "> 1x", t_cpu > t_gpu)
    else:
        t_cpu = median_time(lambda: dynamics.follow_flows(ideal, fg2, n_iter=200, device="cpu"),
                            args.repeat)
        row("follow_flows 200 steps, CPU", t_cpu, "", True)
        print("follow_flows on CUDA: no CUDA device")


if __name__ == "__main__":
    main()
