"""Chunked (dask) segmentation of large synthetic mosaics: peak memory and throughput.

Measurements, for square mosaics of ``--sizes`` pixels (2048, 4096, 8192 by
default) written to zarr by :func:`fieldseg_core.chunked.synthetic_mosaic`
(Poisson fields of touching synthetic cells):

- the chunked path, :func:`fieldseg_core.chunked.segment_chunked` from the
  zarr field to a zarr label image, fixed ``--chunk`` (512) and ``--margin``
  (48), dask's threaded scheduler with ``--workers`` threads: wall time,
  megapixels per second and the peak resident memory (``VmHWM``, Linux) of a
  fresh process that does only that;
- the single-pass path (read the whole field, :func:`fieldseg_core.segment.watershed_from_field`)
  for mosaics up to ``--single-max`` pixels a side (4096), in its own process:
  the same figures, and AP at IoU 0.9 of the chunked labels against it;
- the resident memory of a process that only imports the libraries, the floor
  under both.

Prints a table; asserts nothing. The goal: flat peak memory as the image grows,
the 8192² mosaic within 1.5 GB.

Run: ``python benchmarks/bench_chunked.py [--sizes 2048,4096,8192] [--chunk 512] [--workers 2]``
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb():
    # VmHWM is this process's own peak; ru_maxrss would include the parent's at the fork.
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def child(args):
    """One measurement in this (fresh) process; prints a JSON line."""
    import zarr

    from fieldseg_core import chunked, segment

    result = {}
    if args.child == "chunked":
        t0 = time.perf_counter()
        chunked.segment_chunked(args.field, args.out, "poisson", chunk_size=args.chunk,
                                margin=args.margin, num_workers=args.workers, overwrite=True)
        result["seconds"] = time.perf_counter() - t0
    elif args.child == "single":
        t0 = time.perf_counter()
        labels = segment.watershed_from_field(zarr.open_array(args.field, mode="r")[:])
        result["seconds"] = time.perf_counter() - t0
        zarr.create_array(store=args.out, shape=labels.shape, chunks=(args.chunk, args.chunk),
                          dtype=labels.dtype, overwrite=True)[:] = labels
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


def run_child(kind, field, out, args):
    cmd = [sys.executable, __file__, "--child", kind, "--field", str(field), "--out", str(out),
           "--chunk", str(args.chunk), "--margin", str(args.margin),
           "--workers", str(args.workers)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2048,4096,8192")
    p.add_argument("--chunk", type=int, default=512)
    p.add_argument("--margin", type=int, default=48)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--single-max", type=int, default=4096)
    p.add_argument("--child", choices=("chunked", "single", "imports"))
    p.add_argument("--field")
    p.add_argument("--out")
    args = p.parse_args()
    if args.child:
        return child(args)

    import zarr

    from fieldseg_core import viz
    from fieldseg_core.chunked import synthetic_mosaic
    from fieldseg_core.metrics import average_precision

    sizes = [int(s) for s in args.sizes.split(",")]
    floor = run_child("imports", "-", "-", args)["peak_mb"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_chunked_") as tmp:
        tmp = Path(tmp)
        for size in sizes:
            field = tmp / f"mosaic{size}.zarr"
            t0 = time.perf_counter()
            n_cells = synthetic_mosaic((size, size), field, seed=0, chunks=args.chunk)
            made = time.perf_counter() - t0
            mp = size * size / 1e6
            ch = run_child("chunked", field, tmp / "chunked", args)
            row = [f"{size}²", n_cells, f"{made:.1f}", f"{ch['seconds']:.1f}",
                   f"{mp / ch['seconds']:.2f}", f"{ch['peak_mb']:.0f}"]
            if size <= args.single_max:
                single_out = tmp / f"single{size}.zarr"
                sp = run_child("single", field, single_out, args)
                a = zarr.open_array(str(single_out), mode="r")[:]
                b = zarr.open_array(str(tmp / "chunked" / f"mosaic{size}_labels.zarr"),
                                    mode="r")[:]
                ap90 = float(average_precision(a, b, thresholds=(0.9,))[0])
                row += [f"{sp['seconds']:.1f}", f"{mp / sp['seconds']:.2f}",
                        f"{sp['peak_mb']:.0f}", f"{ap90:.4f}"]
                del a, b
            else:
                row += ["not run"] * 3 + ["-"]
            rows.append(row)
            print(f"... {size}² done", flush=True)
    header = ["mosaic", "cells", "make (s)", "chunked (s)", "chunked MP/s", "chunked peak MB",
              "single (s)", "single MP/s", "single peak MB", "AP@0.9 chunked vs single"]
    print(f"chunk {args.chunk}, margin {args.margin}, {args.workers} dask threads; "
          f"a process that only imports the libraries peaks at {floor:.0f} MB")
    print(viz.table(header, rows).data)


if __name__ == "__main__":
    main()
