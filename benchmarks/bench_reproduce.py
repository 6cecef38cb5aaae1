"""Wall time of the reproductions (``python -m fieldseg_core.reproduce``).

Targets (2-core CPU, single-threaded BLAS/torch):

- Table 4 of Le & Nguyen with 10 scenes per scenario (ideal centroid flows,
  200 Euler steps, DBSCAN): <= 60 s;
- each synthetic flow study at ``--quick`` size, and the four together
  (``table4``, ``fig5``, ``fig6``, ``flows``): < 3 min;
- ``reproduce --all --quick`` including the training studies registered in
  :mod:`fieldseg_core.training_studies`: <= 10 min (with ``--training``).

Prints one line per measurement (wall and CPU seconds); asserts nothing.
A GPU is used for the integration when present unless ``--device cpu``.

Run: ``python benchmarks/bench_reproduce.py [--training] [--full] [--device cpu]``
"""

import argparse
import os
import tempfile
import time

from fieldseg_core import reproduce, studies, training_studies


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def line(what, wall, cpu, target):
    ok = "ok" if target is None or wall <= target else "SLOW"
    goal = "" if target is None else f"(target <= {target:.0f} s) {ok}"
    print(f"{what:<52} {wall:7.1f} s wall {cpu:7.1f} s cpu  {goal}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training", action="store_true",
                        help="also time the registered training studies (--all --quick)")
    parser.add_argument("--full", action="store_true", help="also time the full-size studies")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    dev = ["--device", args.device] if args.device else []

    wall, cpu = timed(lambda: studies.synthetic_benchmark(
        seeds=range(10), flow="centroid_max", n_iter=200, eps=1.5, min_samples=5,
        device=args.device or "cpu", progress=False))
    line("Table 4, 10 scenes x 7 scenarios, centroid flows", wall, cpu, 60)

    with tempfile.TemporaryDirectory() as out:
        total_wall = total_cpu = 0.0
        for name in reproduce.STUDIES:
            wall, cpu = timed(lambda: reproduce.main(
                [name, "--quick", "--quiet", "--out", out] + dev))
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            line(f"reproduce {name} --quick", wall, cpu, None)
        line("synthetic flow studies together, --quick", total_wall, total_cpu, 180)
        if args.full:
            for name in reproduce.STUDIES:
                wall, cpu = timed(lambda: reproduce.main([name, "--quiet", "--out", out] + dev))
                line(f"reproduce {name} (full size)", wall, cpu, None)
        if args.training:
            if not training_studies.REPRODUCTIONS:
                print("no training study registered")
            wall, cpu = timed(lambda: reproduce.main(
                ["--all", "--quick", "--quiet", "--out", os.path.join(out, "all")] + dev))
            line("reproduce --all --quick (with training studies)", wall, cpu, 600)


if __name__ == "__main__":
    main()
