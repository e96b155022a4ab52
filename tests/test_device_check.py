"""``benchmarks/device_check.py --cpu --quick``: the GPU machine's check, run on the CPU at
tiny sizes, writes one JSON with every section, the GPU-only figures skipped with a reason."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def errors(node, where="") -> list[str]:
    """Every ``{"error": ...}`` in the report, with its place."""
    if isinstance(node, dict):
        found = [f"{where}: {node['error']}"] if "error" in node else []
        return found + [e for k, v in node.items() for e in errors(v, f"{where}.{k}")]
    return []


def test_device_check_on_the_cpu(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--cpu", "--quick",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["format"] == "vidssl-device-check/1" and report["finished"]
    assert {"args", "env", "pytest_cuda", "kmeans", "step_speed", "loader", "data_wait", "seconds"} <= set(report)
    assert not errors(report), errors(report)
    assert report["env"]["device"] == "cpu" and report["pytest_cuda"]["skipped"].startswith("--cpu")
    km = report["kmeans"]["torch"]
    assert km["backend"] == "torch-cpu" and len(km["seconds_per_clustering"]) == km["m"]
    for name in ("simclr", "ir"):
        figures = report["step_speed"][name]
        assert set(figures) == {"contiguous", "channels_last", "compile_contiguous", "compile_channels_last"}
        for layout in ("contiguous", "channels_last"):
            assert figures[layout]["clips_per_s"] > 0 and figures[layout]["precision"] == "fp32"
        for layout in ("compile_contiguous", "compile_channels_last"):
            assert "GPU-only" in figures[layout]["skipped"]
        assert 0 <= report["data_wait"][name]["wait_share"] <= 1
        assert report["loader"][f"{name}_data"]["workers_1"]["clips_per_s"] > 0
    assert report["loader"]["videos"]["backend"] == ("pyav" if report["env"]["pyav"] else "frames")
