"""Ours against Cellpose and Omnipose on the same labels, side by side, in one run.

Times (best of ``--repeat`` rounds; in every round each contender runs once, in
an order that alternates between rounds) and peak memory of

1. fields and flows from labels: our ``poisson_field``, ``diffusion_field``,
   ``edt_field`` and ``heat_flows`` against Cellpose's ``masks_to_flows_gpu``
   (2D) / ``masks_to_flows_gpu_3d`` (3D) on the CPU -- Cellpose 4 names its
   CPU-and-GPU torch path so -- and Omnipose's ``masks_to_flows``;
2. mask reconstruction from ideal flows: our ``masks_from_flows`` with its
   defaults against Cellpose's ``compute_masks(flow_threshold=0)`` and
   Omnipose's ``compute_masks(flow_threshold=0)``, each given the flows its own
   ``masks_to_flows`` makes of the same labels (Cellpose's scaled by 5, the
   network's convention that ``compute_masks`` undoes), with AP@0.9 against the
   labels;
3. on a CUDA device, when there is one: the torch paths (``follow_flows``,
   ``masks_from_flows``) on the GPU against the CPU, and Cellpose's GPU paths.

The scenes are ``synthetic.benchmark_scene(ndim, seed=0, density="dense")``:
512x512 with 100 touching ellipses (81 % foreground) and 64x128x128 with 108
touching ellipsoids; the fields are also timed on the standard scenes of
``bench_fields.py`` (smaller cells), where Cellpose's iteration count, which
grows with the largest cell, is lower. Peak memory is the rise of the process's
peak resident set size over one call (``/proc/self/status`` VmHWM after
resetting it through ``/proc/self/clear_refs``), so it counts numpy, torch and
numba allocations alike; it is measured after all the timings. On our rows the
ratios are the peer's time over ours (> 1: ours is faster).

It needs Cellpose (and Omnipose) installed next to ``fieldseg_core``:
``make bench-peers`` builds that environment (``.venv-peers``, from
``benchmarks/peers-requirements.txt``) and runs this script. Without Cellpose it
prints how to get it and exits 0, so ``make bench`` can pass over it. Asserts
nothing.

Run: ``python benchmarks/bench_peers.py [--repeat 3] [--only 2d|3d] [--dense-only]``
"""

import argparse
import contextlib
import ctypes
import io
import os
import platform
import time
import warnings

import numpy as np

from fieldseg_core import dynamics, fields, flows, metrics, synthetic


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------

def _status_kib(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _give_memory_back():
    """Make freed memory leave the process, so that the peak RSS sees every allocation.

    glibc raises its mmap threshold after large blocks are freed and then serves
    them from a heap it keeps: a repeated call would reuse that memory and not
    raise the RSS at all. A fixed threshold (64 KiB; fixing it turns the dynamic
    one off) and a trim before each measurement undo that for every contender
    alike.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 64 * 1024)  # M_TRIM_THRESHOLD
    libc.malloc_trim(0)


def peak_memory_mib(fn):
    """Rise of the peak resident set size over one call of ``fn``, MiB (NaN if unsupported)."""
    _give_memory_back()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        return float("nan")
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) / 1024.0


def race(contenders, repeat):
    """Best wall time of each contender over ``repeat`` alternating rounds.

    Every contender runs once untimed first (imports, numba JIT, torch
    start-up), then once per round; odd rounds run the list backwards so that
    nobody always follows the same neighbour.
    """
    for fn in contenders.values():
        fn()
    best = {name: np.inf for name in contenders}
    names = list(contenders)
    for round_ in range(repeat):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            contenders[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


class Table:
    """One comparison: its contenders, raced now, their memory measured at the end.

    ``ratio(name, best)`` gives the number of the ratio column (headed
    ``ratio_header``); ``notes`` adds a remark per row (AP@0.9, say).
    """

    def __init__(self, title, contenders, ratio_header, ratio, repeat, notes=None):
        self.title, self.contenders = title, contenders
        self.ratio_header, self.ratio = ratio_header, ratio
        self.notes = notes or {}
        self.best = race(contenders, repeat)
        self.memory = {}

    def measure_memory(self):
        # Call after every race: the fixed mmap threshold this sets would slow
        # the allocation-heavy contenders of any later race.
        self.memory = {name: peak_memory_mib(fn) for name, fn in self.contenders.items()}

    def print(self):
        print(f"\n{self.title}")
        print(f"  {'':<50}{'best s':>9}{self.ratio_header:>15}{'peak MiB':>10}  note")
        for name in self.contenders:
            shown = f"{self.ratio(name, self.best):.2f}x"
            memory = self.memory.get(name, float("nan"))
            print(f"  {name:<50}{self.best[name]:>9.3f}{shown:>15}{memory:>10.0f}  "
                  f"{self.notes.get(name, '')}")


def ap90(labels, predicted):
    return float(metrics.average_precision(labels, np.asarray(predicted), thresholds=0.9)[0])


# --------------------------------------------------------------------------
# the peers
# --------------------------------------------------------------------------

def import_peers():
    """``(cellpose.dynamics, omnipose.core or None, versions)``; cellpose may be None."""
    from importlib.metadata import version

    versions = {}
    try:
        from cellpose import dynamics as cp_dynamics
        versions["cellpose"] = version("cellpose")
    except ImportError:
        cp_dynamics = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from omnipose import core as omni_core
        versions["omnipose"] = version("omnipose")
    except Exception as error:  # omnipose fails in several ways when its pins drift
        omni_core = None
        versions["omnipose"] = f"not importable ({type(error).__name__}: {error})"
    return cp_dynamics, omni_core, versions


def cellpose_flows(cp_dynamics, labels, device):
    if labels.ndim == 2:
        return cp_dynamics.masks_to_flows_gpu(labels, device=device)[0]
    return cp_dynamics.masks_to_flows_gpu_3d(labels, device=device)


def omnipose_flows(omni_core, labels, device):
    """Omnipose's (distance-like field T, flows mu) of ``labels``, as numpy arrays."""
    _, _, _, field, mu = quiet(omni_core.masks_to_flows)(labels, use_gpu=device.type == "cuda",
                                                          device=device, omni=True, dim=labels.ndim)
    return np.asarray(field.cpu()), np.asarray(mu.cpu())


def quiet(fn):
    """``fn`` with its prints to stdout swallowed (Omnipose's 3D path prints progress notes)."""
    def run(*args, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return fn(*args, **kwargs)
    return run


# --------------------------------------------------------------------------
# the comparisons
# --------------------------------------------------------------------------

def compare_fields(labels, cp_dynamics, omni_core, repeat, cpu):
    contenders = {
        "ours poisson_field": lambda: fields.poisson_field(labels),
        "ours diffusion_field": lambda: fields.diffusion_field(labels),
        "ours edt_field": lambda: fields.edt_field(labels),
        "ours heat_flows": lambda: flows.heat_flows(labels),
        "Cellpose masks_to_flows (CPU)": lambda: cellpose_flows(cp_dynamics, labels, cpu),
    }
    if omni_core is not None:
        contenders["Omnipose masks_to_flows (CPU)"] = lambda: omnipose_flows(omni_core, labels, cpu)
    peer = "Cellpose masks_to_flows (CPU)"
    return Table(f"fields and flows from labels, {_describe(labels)}", contenders,
                 "Cellpose/row", lambda name, best: best[peer] / best[name], repeat)


def ideal_inputs(labels, cp_dynamics, cpu):
    """Ideal inputs of mask reconstruction: (foreground, our heat flows, Cellpose's dP, cellprob).

    Cellpose's flows are its own, times 5: the network's convention, which
    ``compute_masks`` divides out.
    """
    foreground = labels > 0
    cp_flows = 5.0 * cellpose_flows(cp_dynamics, labels, cpu).astype(np.float32)
    cellprob = np.where(foreground, 5.0, -5.0).astype(np.float32)
    return foreground, flows.heat_flows(labels), cp_flows, cellprob


def compare_masks(labels, cp_dynamics, omni_core, repeat, cpu):
    foreground, ours_flows, cp_flows, cellprob = ideal_inputs(labels, cp_dynamics, cpu)
    contenders = {
        "ours masks_from_flows (defaults, CPU)":
            lambda: dynamics.masks_from_flows(ours_flows, foreground, device="cpu"),
        "Cellpose compute_masks (flow_threshold=0, CPU)":
            lambda: cp_dynamics.compute_masks(cp_flows, cellprob, flow_threshold=0,
                                              do_3D=labels.ndim == 3, device=cpu),
    }
    if omni_core is not None:
        omni_field, omni_mu = omnipose_flows(omni_core, labels, cpu)
        contenders["Omnipose compute_masks (flow_threshold=0, CPU)"] = quiet(
            lambda: omni_core.compute_masks(omni_mu, omni_field, flow_threshold=0.0, omni=True,
                                            dim=labels.ndim, do_3D=labels.ndim == 3,
                                            use_gpu=False, device=cpu)[0])
    quality = {name: f"AP@0.9 = {ap90(labels, fn()):.3f}" for name, fn in contenders.items()}
    ours = "ours masks_from_flows (defaults, CPU)"
    return Table(f"masks from ideal flows, {_describe(labels)}", contenders, "row/ours",
                 lambda name, best: best[name] / best[ours], repeat, notes=quality)


def compare_gpu(labels, cp_dynamics, repeat):
    import torch

    cuda = torch.device("cuda")
    foreground, ours_flows, cp_flows, cellprob = ideal_inputs(labels, cp_dynamics, torch.device("cpu"))

    def synced(fn):
        def run():
            out = fn()
            torch.cuda.synchronize()
            return out
        return run

    contenders = {
        "ours follow_flows (CUDA)": synced(lambda: dynamics.follow_flows(ours_flows, foreground,
                                                                         device="cuda")),
        "ours follow_flows (CPU)": lambda: dynamics.follow_flows(ours_flows, foreground, device="cpu"),
        "ours masks_from_flows (CUDA)": synced(lambda: dynamics.masks_from_flows(
            ours_flows, foreground, device="cuda")),
        "Cellpose masks_to_flows (CUDA)": synced(lambda: cellpose_flows(cp_dynamics, labels, cuda)),
        "Cellpose compute_masks (flow_threshold=0, CUDA)": synced(lambda: cp_dynamics.compute_masks(
            cp_flows, cellprob, flow_threshold=0, do_3D=labels.ndim == 3, device=cuda)),
    }
    quality = {
        "ours masks_from_flows (CUDA)":
            f"AP@0.9 = {ap90(labels, dynamics.masks_from_flows(ours_flows, foreground, device='cuda')):.3f}",
    }
    table = Table(f"GPU ({torch.cuda.get_device_name()}), {_describe(labels)}", contenders,
                  "row/ours CUDA", lambda name, best: best[name] / best["ours follow_flows (CUDA)"],
                  repeat, notes=quality)
    # Peak GPU memory is torch's own count, which Cellpose's paths also go through.
    for name, fn in contenders.items():
        torch.cuda.reset_peak_memory_stats()
        fn()
        table.notes[name] = (table.notes.get(name, "") + f" peak CUDA "
                             f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB").strip()
    return table


def _describe(labels):
    shape = "x".join(map(str, labels.shape))
    return f"{shape}, {int(labels.max())} cells, {100 * (labels > 0).mean():.0f} % foreground"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["2d", "3d"], help="run the 2D or the 3D scenes only")
    parser.add_argument("--dense-only", action="store_true",
                        help="skip the fields on the standard (sparser, smaller-cell) scenes")
    args = parser.parse_args()

    cp_dynamics, omni_core, versions = import_peers()
    if cp_dynamics is None:
        print("bench_peers: Cellpose is not installed in this environment; "
              "`make bench-peers` builds .venv-peers with it and runs this comparison.")
        return
    import scipy
    import torch

    cpu = torch.device("cpu")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; torch {torch.__version__} with {torch.get_num_threads()} "
          f"threads (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); "
          f"numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"peers: cellpose {versions['cellpose']}, omnipose {versions['omnipose']}")
    print("ours follow_flows runs on 1 torch thread below "
          f"{dynamics.SINGLE_THREAD_BELOW:,} points (its default); the peers use torch's setting")
    tables = []
    for ndim in (2, 3):
        if args.only and args.only != f"{ndim}d":
            continue
        _, labels = synthetic.benchmark_scene(ndim, seed=0, density="dense")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables.append(compare_fields(labels, cp_dynamics, omni_core, args.repeat, cpu))
            tables.append(compare_masks(labels, cp_dynamics, omni_core, args.repeat, cpu))
            if torch.cuda.is_available():
                tables.append(compare_gpu(labels, cp_dynamics, args.repeat))
            if not args.dense_only:
                # Cellpose iterates 2x (2D) or 6x (3D) the largest cell's extent: on
                # smaller cells it does less work, and the ratios shrink.
                _, standard = synthetic.benchmark_scene(ndim, seed=0)
                tables.append(compare_fields(standard, cp_dynamics, omni_core, args.repeat, cpu))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for table in tables:
            table.measure_memory()
    for table in tables:
        table.print()
    print("\nbest s: best wall time of --repeat alternating rounds; Cellpose/row: Cellpose's time over "
          "the row's; row/ours: the row's time over ours (on our rows, > 1 means ours is faster); "
          "peak MiB: rise of the process's peak RSS over one call")
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU comparison was skipped")


if __name__ == "__main__":
    main()
