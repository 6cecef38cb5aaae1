"""Speed and peak memory of the three scalar fields on the benchmark scenes.

Targets (issue "Foundation"): each field <= 0.3 s on the 512x512 image with
~100 touching ellipses and <= 1.5 s on the 64x128x128 volume with ~100
touching ellipsoids, on a 2-core machine. Prints a table; asserts nothing.

Run: ``python benchmarks/bench_fields.py [--repeat 5]``
"""

import argparse
import time
import tracemalloc

import numpy as np

from fieldseg_core import fields, synthetic

TARGET_S = {2: 0.3, 3: 1.5}


def measure(fn, labels, repeat):
    """Median wall time, median CPU time and traced peak memory of ``fn(labels)``.

    Targets are wall times on an idle machine. CPU time (all threads of this
    process) is printed beside it: BLAS uses both cores in the CG dot
    products, so it exceeds wall time on an idle machine, and a wall time far
    above it means other jobs were competing for the cores.
    """
    fn(labels)  # warm-up: imports, caches
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(labels)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    fn(labels)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return np.median(wall), np.median(cpu), peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'scene':<24}{'field':<11}{'wall s':>9}{'cpu s':>8}{'target s':>10}{'peak MiB':>10}  ok")
    for ndim in (2, 3):
        _, labels = synthetic.benchmark_scene(ndim, seed=0)
        scene = f"{'x'.join(map(str, labels.shape))} ({labels.max()} cells)"
        for name, fn in fields.FIELDS.items():
            wall, cpu, peak = measure(fn, labels, args.repeat)
            ok = "yes" if wall <= TARGET_S[ndim] else "NO"
            print(f"{scene:<24}{name:<11}{wall:>9.3f}{cpu:>8.3f}{TARGET_S[ndim]:>10.1f}{peak:>10.0f}  {ok}")
    print("wall/cpu: medians over --repeat calls (targets are idle-machine wall times; cpu =")
    print("process time of all threads); peak MiB: allocations traced by tracemalloc in one call")


if __name__ == "__main__":
    main()
