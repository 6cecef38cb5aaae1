"""Tests of benchmarks/bench_peers.py that need no peer installed."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_peers.py"


@pytest.mark.skipif(importlib.util.find_spec("cellpose") is not None,
                    reason="Cellpose is installed here: the script would run the full comparison")
def test_without_cellpose_the_script_points_to_make_bench_peers():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "make bench-peers" in done.stdout


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_sees_a_temporary_array():
    # 20 M float64 = 152.6 MiB, freed before the call returns: only the peak shows it.
    # In a child process: the measurement retunes malloc for the rest of its process.
    code = (
        "import importlib.util, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('bench_peers', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(m.peak_memory_mib(lambda: np.ones(20_000_000).sum()), m.peak_memory_mib(lambda: None),\n"
        "      *[m.peak_memory_mib(lambda: np.ones(2_000_000).sum()) for _ in range(3)])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with_array, without, *repeated = map(float, done.stdout.split())
    assert 140 < with_array < 175 and without < 10
    # A 15 MiB block freed and asked for again: glibc would serve it from memory
    # the process kept (no RSS rise) unless the measurement makes it give memory back.
    assert all(13 < peak < 25 for peak in repeated), repeated
