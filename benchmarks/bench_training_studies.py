"""Wall time of the quick training studies (what ``reproduce --all --quick`` and chapters 6-8 pay).

Usage::

    python benchmarks/bench_training_studies.py            # all three, quick size, CPU
    python benchmarks/bench_training_studies.py sdf_ablation

Prints the seconds per study and the number of trained networks. The budget is
about 4 minutes for all three on an idle 2-core CPU (issue 7); nothing is asserted.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

from fieldseg_core import training_studies as ts  # noqa: E402

NETWORKS = {"vector_fields": 4, "sdf_ablation": 8, "scalar_fields": 4}   # per seed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="*", default=list(ts.REPRODUCTIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    total = 0.0
    for name in args.studies:
        _, run = ts.REPRODUCTIONS[name]
        started = time.perf_counter()
        rows, _ = run(None, True, tuple(args.seeds), "cpu")
        seconds = time.perf_counter() - started
        total += seconds
        n = NETWORKS[name] * len(args.seeds)
        print(f"{name:14s} {seconds:6.1f} s  ({n} networks, {seconds / n:.1f} s each, "
              f"{sum(r['reproduced'] for r in rows)}/{len(rows)} criteria met)")
    print(f"{'total':14s} {total:6.1f} s")


if __name__ == "__main__":
    main()
