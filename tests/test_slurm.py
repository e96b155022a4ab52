"""``vidssl submit`` and the SLURM batch scripts, without SLURM and without submitit: the
command construction (``--dry-run``), submitit's parameters and checkpoint hook against a
stand-in module, and the batch scripts run by bash with stand-ins for srun / scontrol /
torchrun: on the time-limit warning they let the training checkpoint, then requeue."""
import os
import pickle
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from vidssl.cli import main
from vidssl.engine import slurm
from vidssl.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_prints_the_batch_script(capsys):
    assert main(["submit", "--nodes", "2", "--gpus-per-node", "4", "--partition", "gpu", "--time", "90",
                 "--sbatch", "qos=high", "--folder", "logs", "--dry-run", "--",
                 "pretrain", "ir_tiny", "optim.lr=0.2", "--label-column", "appearance"]) == 0
    script = capsys.readouterr().out
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for option in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--time=90",
                   "--partition=gpu", "--signal=B:USR1@120", "--requeue", "--open-mode=append",
                   "--output=logs/%j.out", "--qos=high"):
        assert f"#SBATCH {option}" in lines, option
    srun = next(line for line in lines if line.startswith("srun "))
    assert srun == (f"srun --kill-on-bad-exit=1 {sys.executable} -m vidssl pretrain ir_tiny optim.lr=0.2 "
                    "--label-column appearance &")
    assert "trap requeue USR1" in lines and '    scontrol requeue "$SLURM_JOB_ID"' in lines
    assert any(line.startswith("# run folder: runs/ir_tiny-") for line in lines)  # where it resumes from


@pytest.mark.parametrize("args,message", [
    (["--dry-run", "--", "eval", "knn"], "runs a training command"),
    (["--dry-run", "--"], "runs a training command"),
    (["--dry-run", "--", "pretrain"], "the recipe must come first"),
    (["--dry-run", "--", "pretrain", "ir_tiny", "optim.lrr=1"], "did you mean 'optim.lr'"),  # before queueing
    (["--nodes", "0", "--dry-run", "--", "pretrain", "ir_tiny"], "--nodes must be >= 1"),
    (["--time", "1", "--signal-delay", "120", "--dry-run", "--", "pretrain", "ir_tiny"], "not shorter than"),
    (["--sbatch", "qos", "--dry-run", "--", "pretrain", "ir_tiny"], "expected KEY=VALUE"),
])
def test_bad_submissions_are_one_line_usage_errors(args, message, capsys):
    assert main(["submit", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_without_submitit_a_submission_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    assert main(["submit", "--", "pretrain", "ir_tiny"]) == 1
    assert capsys.readouterr().err == ("vidssl: error: vidssl submit needs submitit (pip install submitit), or use "
                                       "--dry-run to print a batch script for sbatch\n")


class Delayed:
    def __init__(self, fn, *args, **kwargs):
        self.function, self.args = fn, args


def fake_submitit(record: dict) -> types.ModuleType:
    """A stand-in for the few submitit names vidssl uses."""
    class AutoExecutor:
        def __init__(self, folder):
            record["folder"] = folder

        def update_parameters(self, **kw):
            record["parameters"] = kw

        def submit(self, fn):
            record["submitted"] = pickle.loads(pickle.dumps(fn))  # submitit pickles the callable
            return types.SimpleNamespace(job_id="4242")

    module = types.ModuleType("submitit")
    module.AutoExecutor = AutoExecutor
    module.helpers = types.SimpleNamespace(DelayedSubmission=Delayed)
    return module


def test_submit_hands_submitit_one_task_per_gpu_and_the_command(monkeypatch, capsys):
    record = {}
    monkeypatch.setitem(sys.modules, "submitit", fake_submitit(record))
    assert main(["submit", "--nodes", "2", "--gpus-per-node", "8", "--account", "lab", "--mem-gb", "400",
                 "--sbatch", "constraint=h100", "--", "pretrain", "ir_tiny", "train.epochs=3"]) == 0
    assert "submitted job 4242 (2 x 8 tasks" in capsys.readouterr().out
    assert record["folder"] == "runs/slurm"
    assert record["parameters"] == {"name": "vidssl", "nodes": 2, "tasks_per_node": 8, "gpus_per_node": 8,
                                    "cpus_per_task": 8, "timeout_min": 1440, "slurm_signal_delay_s": 120,
                                    "slurm_account": "lab", "mem_gb": 400,
                                    "slurm_additional_parameters": {"constraint": "h100"}}
    job = record["submitted"]
    assert isinstance(job, slurm.SubmittedCommand) and job.argv == ["pretrain", "ir_tiny", "train.epochs=3"]


CHILD = """
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda s, f: (print("checkpoint written", flush=True), sys.exit(138)))
print("training", flush=True)
while True:
    time.sleep(0.05)
"""


def test_the_checkpoint_hook_waits_for_the_command_and_requeues_the_same_one(monkeypatch, tmp_path):
    """submitit calls ``checkpoint`` from its SIGUSR1 handler: it passes the signal on, waits
    for the command to exit, and returns the same command for the requeued job."""
    monkeypatch.setitem(sys.modules, "submitit", fake_submitit({}))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    job = slurm.SubmittedCommand(["pretrain", "ir_tiny"])
    job.proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert job.proc.stdout.readline() == "training\n"
    delayed = job.checkpoint()
    assert job.proc.returncode == 138 and job.proc.stdout.read() == "checkpoint written\n"
    assert isinstance(delayed, Delayed) and delayed.function.argv == ["pretrain", "ir_tiny"]
    assert delayed.function.proc is None and pickle.loads(pickle.dumps(job)).proc is None


# ----------------------------------------------------------------------------- the batch scripts, run by bash

TINY = ["model.width=4", "data.num_frames=4", "data.crop_size=16", "data.augment.short_side=[16,20]",
        "data.batch_size=2", "data.workers=0", "train.epochs=5", "train.log_every=1", "train.progress=false"]


def stand_ins(folder: Path, torchrun: str | None = None) -> dict:
    """srun (runs its command, so that the script's step is the command itself), scontrol
    (records requeues, names one host), and optionally torchrun; the environment to use."""
    bin_ = folder / "bin"
    bin_.mkdir()
    tools = {
        "srun": '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n',
        "scontrol": f'#!/bin/bash\nif [ "$1" = show ]; then echo node01; else echo "$@" >> {folder}/scontrol.log; fi\n',
    }
    if torchrun:
        tools["torchrun"] = torchrun
    for name, text in tools.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NODELIST": "node01", "SLURM_NNODES": "1", "SLURM_GPUS_ON_NODE": "1", "OMP_NUM_THREADS": "1"}


def run_until(script: Path, env: dict, ready, cwd: Path) -> tuple[subprocess.Popen, str]:
    """Run ``bash script``, send it SIGUSR1 (SLURM's B:USR1) once ``ready()``; (process, output)."""
    proc = subprocess.Popen(["bash", str(script)], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and not ready() and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before the warning: " + proc.stdout.read()
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    return proc, out


def test_the_dry_run_script_checkpoints_requeues_and_resumes(tmp_path, capsys):
    frames = pytest.importorskip("test_cuda").frame_folders(tmp_path / "frames")
    args = ["pretrain", "supervised_tiny", f"data.train={frames}", "data.backend=frames", *TINY,
            f"train.out={tmp_path / 'runs'}"]
    assert main(["submit", "--dry-run", "--folder", str(tmp_path / "logs"), "--", *args]) == 0
    script = tmp_path / "job.sbatch"
    script.write_text(capsys.readouterr().out)
    run_dir = Path(next(line for line in script.read_text().splitlines()
                        if line.startswith("# run folder: ")).removeprefix("# run folder: "))
    env = stand_ins(tmp_path)
    metrics = run_dir / "metrics.jsonl"
    proc, out = run_until(script, env, lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 2,
                          tmp_path)
    assert "stopped by SIGUSR1 after step" in out, out
    assert proc.returncode == 138  # the job's own exit: interrupted by the warning (SLURM requeues it anyway)
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"  # after the checkpoint was written
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert saved["step"] >= 2 and not saved["finished"]
    again = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0 and f"resuming {run_dir}" in again.stderr, again.stderr  # the requeued job
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["finished"]


FAKE_TORCHRUN = """#!/bin/bash
# records its arguments; "trains" until SIGTERM, then "checkpoints" and exits like vidssl (143)
trap 'echo checkpointed > "$LOG_DIR/torchrun.done"; exit 143' TERM
echo "$@" > "$LOG_DIR/torchrun.args"
while true; do sleep 0.05; done
"""


def test_the_example_sbatch_passes_the_warning_to_torchrun_as_sigterm_then_requeues(tmp_path):
    env = {**stand_ins(tmp_path, torchrun=FAKE_TORCHRUN), "LOG_DIR": str(tmp_path), "SLURM_NNODES": "2",
           "SLURM_GPUS_ON_NODE": "4"}
    script = ROOT / "examples" / "slurm" / "pretrain.sbatch"
    args_file = tmp_path / "torchrun.args"
    proc = subprocess.Popen(["bash", str(script), "byol_slow_r50", "data.train=k400.csv"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not args_file.is_file() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=30)
    assert args_file.read_text().split() == [
        "--nnodes=2", "--nproc_per_node=4", "--rdzv_backend=c10d", f"--rdzv_endpoint=node01:{20000 + 4242}",
        "--rdzv_id=4242", "-m", "vidssl", "pretrain", "byol_slow_r50", "data.train=k400.csv"]
    assert (tmp_path / "torchrun.done").read_text() == "checkpointed\n"
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    assert "checkpointing, then requeueing job 4242" in out
