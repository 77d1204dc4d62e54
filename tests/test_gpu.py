"""GPU graders without a GPU: detection from a fake nvidia-smi, the --gpus and
--per-gpu options, the slots that share GPUs between workers, each kernel's
environment and device nodes, and the sandbox command built from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections import Counter
from pathlib import Path

import pytest

from autograder import artifacts
from autograder.course import Limits
from autograder.engine import gpu, sandbox

A100 = gpu.Gpu(index=0, name="NVIDIA A100-SXM4-80GB", memory_mib=81920, uuid="GPU-aaaa", minor=1)
H100 = gpu.Gpu(index=1, name="NVIDIA H100 80GB HBM3, rev 2", memory_mib=81559, uuid="GPU-bbbb", minor=0)
"""The fake nvidia-smi's two GPUs. Their device minors are the reverse of
their indices, as the driver may number them."""


def fake_nvidia_smi(directory: Path, *, output: str, status: int = 0) -> Path:
    """An ``nvidia-smi`` in ``directory`` that prints ``output``, exits with
    ``status`` and writes its arguments to ``directory/args``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "$@" > "{directory}/args"\ncat <<\'EOF\'\n{output}EOF\nexit {status}\n')
    script.chmod(0o755)
    return directory


def fake_driver(root: Path, minors: dict[str, int]) -> Path:
    """``/proc/driver/nvidia/gpus`` with a folder per PCI address and its ``Device Minor``."""
    for address, minor in minors.items():
        (root / address).mkdir(parents=True)
        (root / address / "information").write_text(
            f"Model: \t\t NVIDIA GPU\nIRQ:   \t\t 42\nGPU UUID: \t GPU-x\nDevice Minor: \t {minor}\n")
    return root


def fake_dev(root: Path, *names: str) -> Path:
    """A ``/dev`` of empty files with these names, beside ones no kernel needs."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (*names, "null", "sda", "nvidia-modeset"):
        (root / name).touch()
    return root


# ---------------------------------------------------------------- detection

LISTING = ("0, GPU-aaaa, 00000000:3B:00.0, 81920, NVIDIA A100-SXM4-80GB\n"
           "1, GPU-bbbb, 00000000:AF:00.0, 81559, NVIDIA H100 80GB HBM3, rev 2\n")


def test_detect_gpus_reads_nvidia_smi_and_the_drivers_minor_numbers(tmp_path, monkeypatch):
    bin_dir = fake_nvidia_smi(tmp_path / "bin", output=LISTING)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    driver = fake_driver(tmp_path / "gpus", {"0000:3b:00.0": 1, "0000:af:00.0": 0})

    assert gpu.detect_gpus(driver_gpus=driver) == [A100, H100]
    assert (bin_dir / "args").read_text().split() == list(gpu.NVIDIA_SMI_QUERY[1:])
    assert [g.node_number for g in gpu.detect_gpus(driver_gpus=driver)] == [1, 0]


def test_without_the_drivers_files_a_gpus_node_is_its_index(tmp_path, monkeypatch):
    bin_dir = fake_nvidia_smi(tmp_path / "bin", output=LISTING)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    found = gpu.detect_gpus(driver_gpus=tmp_path / "missing")
    assert [(g.minor, g.node_number) for g in found] == [(None, 0), (None, 1)]


def test_no_gpus_when_nvidia_smi_is_absent_fails_or_lists_nothing_usable(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert gpu.detect_gpus() == []

    failing = fake_nvidia_smi(tmp_path / "failing", output="NVIDIA-SMI has failed\n", status=9)
    monkeypatch.setenv("PATH", str(failing))
    assert gpu.detect_gpus() == []

    odd = fake_nvidia_smi(tmp_path / "odd", output="0, GPU-aaaa, 00000000:3B:00.0, [N/A], A100\n")
    monkeypatch.setenv("PATH", str(odd))
    assert gpu.detect_gpus() == []


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("value, expected", [
    ("auto", [A100, H100]), ("none", []), ("1", [H100]), ("1,0", [H100, A100]),
])
def test_gpus_option(value, expected):
    assert gpu.select_gpus(value, available=[A100, H100]) == expected


def test_gpus_auto_on_a_machine_without_gpus_is_none():
    assert gpu.select_gpus("auto", available=[]) == []


@pytest.mark.parametrize("value", ["", "all", "gpu0", "0,", ",1", "0;1", "-1", "0, 1", " 0", "1.0", "AUTO"])
def test_gpus_option_rejects_what_is_not_auto_none_or_indices(value):
    with pytest.raises(gpu.GpuError) as error:
        gpu.select_gpus(value, available=[A100, H100])
    assert str(error.value).startswith(f"--gpus {value!r}")
    assert gpu.GPUS_RULE in str(error.value)


def test_gpus_option_rejects_a_gpu_named_twice_or_not_there():
    with pytest.raises(gpu.GpuError, match=r"--gpus '0,1,0' names GPU 0 twice"):
        gpu.select_gpus("0,1,0", available=[A100, H100])
    with pytest.raises(gpu.GpuError) as error:
        gpu.select_gpus("0,2", available=[A100, H100])
    assert "no GPU 2" in str(error.value) and "0 (NVIDIA A100-SXM4-80GB)" in str(error.value)
    with pytest.raises(gpu.GpuError, match="nvidia-smi lists no GPU"):
        gpu.select_gpus("0", available=[])


@pytest.mark.parametrize("value, expected", [("1", 1), ("4", 4), ("16", 16)])
def test_per_gpu_option(value, expected):
    assert gpu.parse_per_gpu(value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "", "two", "1.5", "00"])
def test_per_gpu_option_rejects_anything_but_a_positive_whole_number(value):
    with pytest.raises(gpu.GpuError) as error:
        gpu.parse_per_gpu(value)
    assert str(error.value) == f"--per-gpu {value!r}: {gpu.PER_GPU_RULE}."


@pytest.mark.parametrize("memory_mib, need_gib, expected", [
    (81920, 8.0, 9),      # 80 GiB card: 72 GiB usable
    (143771, 8.0, 15),    # H200: 140.4 GiB, 126.4 usable
    (81920, 16.0, 4),
    (16384, 6.0, 2),
    (4096, 8.0, 1),       # a card too small for one kernel still takes one
])
def test_per_gpu_default_leaves_a_margin_of_each_cards_memory(memory_mib, need_gib, expected):
    assert gpu.default_per_gpu(memory_mib=memory_mib, gpu_memory_gib=need_gib) == expected


def test_capacities_follow_the_assignments_gpu_memory_unless_per_gpu_is_given():
    small = gpu.Gpu(index=2, name="T4", memory_mib=15360)
    assert Limits().gpu_memory_gib == 8.0 and Limits().evaluate_on_gpu is False
    assert gpu.capacities([A100, small], per_gpu=None, limits=Limits()) == {0: 9, 2: 1}
    assert gpu.capacities([A100, small], per_gpu=None, limits=Limits(gpu_memory_gib=2)) == {0: 36, 2: 6}
    assert gpu.capacities([A100, small], per_gpu=3, limits=Limits()) == {0: 3, 2: 3}
    assert gpu.capacities([], per_gpu=None, limits=Limits()) == {}


def test_each_kernels_memory_share_keeps_the_margin_free():
    assert gpu.memory_share(1) == pytest.approx(0.9)
    assert gpu.memory_share(4) == pytest.approx(0.225)
    per_gpu = gpu.default_per_gpu(memory_mib=A100.memory_mib, gpu_memory_gib=8.0)
    assert gpu.memory_share(per_gpu) * A100.memory_mib / 1024 >= 8.0


# ---------------------------------------------------------------- slots


def test_slots_never_give_one_gpu_more_kernels_than_its_capacity():
    capacity = {0: 2, 1: 3}
    slots = gpu.GpuSlots(capacity)
    holding, peak, taken = Counter(), Counter(), Counter()
    count = threading.Lock()
    start = threading.Barrier(16)

    def worker():
        start.wait()
        for _ in range(15):
            slot = slots.acquire()
            index = slot.gpu_index
            with count:
                holding[index] += 1
                peak[index] = max(peak[index], holding[index])
                taken[index] += 1
            time.sleep(0.002)
            with count:
                holding[index] -= 1
            slots.release(slot)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker never got a slot"
    assert sum(taken.values()) == 16 * 15 and set(taken) == {0, 1}
    assert peak == capacity  # full, never over
    assert holding == Counter({0: 0, 1: 0})


def test_a_worker_waits_for_a_slot_and_gets_the_least_loaded_gpu():
    slots = gpu.GpuSlots({0: 1, 1: 2})
    assert slots.total == 3
    got = []
    held = [slots.acquire() for _ in range(3)]
    assert [slot.gpu_index for slot in held] == [1, 0, 1]

    def wait_for_a_slot():
        slot = slots.acquire()
        got.append(slot.gpu_index)
        slots.release(slot)

    waiter = threading.Thread(target=wait_for_a_slot)
    waiter.start()
    waiter.join(timeout=0.3)
    assert waiter.is_alive() and got == []  # every slot is held
    for slot in held:
        slots.release(slot)
    waiter.join(timeout=10)
    assert got == [1]


def test_without_gpus_every_worker_gets_none_at_once():
    slots = gpu.GpuSlots({})
    assert slots.total == 0
    assert slots.acquire().gpu_index is None and slots.acquire().gpu_index is None


def test_slots_refuse_a_gpu_without_room():
    with pytest.raises(gpu.GpuError):
        gpu.GpuSlots({0: 0})


# ---------------------------------------------------------------- the kernel's environment


def test_kernel_env_gives_the_allotted_gpu_by_uuid_and_each_backend_its_share():
    env = gpu.kernel_env(gpu=H100, memory_fraction=gpu.memory_share(4))
    assert env == {
        "CUDA_VISIBLE_DEVICES": "GPU-bbbb",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        # One name only: JAX 0.11 refuses the GPU when given both (measured on an H200).
        "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }
    by_hand = gpu.Gpu(index=3, name="no uuid known", memory_mib=1024)
    assert gpu.kernel_env(gpu=by_hand, memory_fraction=0.5)["CUDA_VISIBLE_DEVICES"] == "3"


def test_a_kernel_without_a_gpu_sees_none():
    env = gpu.kernel_env(gpu=None, memory_fraction=1.0)
    assert env == {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}


def test_torch_kernels_cap_their_share_in_code_run_first(monkeypatch):
    calls = []
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(
        set_per_process_memory_fraction=lambda fraction, device: calls.append((fraction, device))))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    code = gpu.kernel_setup_code(gpu=A100, memory_fraction=gpu.memory_share(4), backend="torch")
    assert "\n" not in code
    exec(code, {})
    assert calls == [(0.225, 0)]
    assert gpu.kernel_setup_code(gpu=A100, memory_fraction=0.5, backend="tensorflow") is None
    assert gpu.kernel_setup_code(gpu=A100, memory_fraction=0.5, backend="jax") is None
    assert gpu.kernel_setup_code(gpu=None, memory_fraction=0.5, backend="torch") is None


def test_the_evaluator_runs_on_the_cpu_unless_the_assignment_opts_in():
    cpu = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    assert gpu.evaluator_env(limits=Limits(), gpu=A100, memory_fraction=0.3) == cpu
    assert gpu.evaluator_env(limits=Limits(evaluate_on_gpu=True), gpu=None, memory_fraction=0.3) == cpu
    on_gpu = gpu.evaluator_env(limits=Limits(evaluate_on_gpu=True), gpu=A100, memory_fraction=0.3)
    assert on_gpu == gpu.kernel_env(gpu=A100, memory_fraction=0.3)
    assert on_gpu["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa"


# ---------------------------------------------------------------- device nodes and the sandbox


def test_device_nodes_are_the_gpus_own_and_the_drivers_control_nodes(tmp_path):
    dev = fake_dev(tmp_path / "dev", "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")
    assert gpu.device_nodes(1, dev=dev) == [dev / "nvidiactl", dev / "nvidia-uvm", dev / "nvidia1"]
    (dev / "nvidia-uvm-tools").touch()
    assert gpu.device_nodes(0, dev=dev) == [dev / "nvidiactl", dev / "nvidia-uvm",
                                            dev / "nvidia-uvm-tools", dev / "nvidia0"]


def test_device_nodes_of_a_gpu_the_driver_has_no_node_for_are_an_error(tmp_path):
    dev = fake_dev(tmp_path / "dev", "nvidia0", "nvidiactl")
    with pytest.raises(gpu.GpuError, match=r"nvidia2 missing"):
        gpu.device_nodes(2, dev=dev)
    (dev / "nvidiactl").unlink()
    with pytest.raises(gpu.GpuError, match=r"nvidiactl missing"):
        gpu.device_nodes(0, dev=dev)


def dev_binds(command: list[str]) -> list[tuple[str, str]]:
    return [(command[i + 1], command[i + 2]) for i, arg in enumerate(command) if arg == "--dev-bind"]


def test_sandbox_of_a_kernel_allotted_gpu_1_binds_its_node_and_no_other_gpus(tmp_path):
    dev = fake_dev(tmp_path / "dev", "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")
    command = sandbox.bwrap_command(writable=[tmp_path], readable=[],
                                    devices=gpu.device_nodes(1, dev=dev))
    bound = {source for source, target in dev_binds(command) if source == target}
    assert bound == {str(dev / "nvidiactl"), str(dev / "nvidia-uvm"), str(dev / "nvidia1")}
    assert len(dev_binds(command)) == 3
    assert not any(str(dev / "nvidia0") in arg for arg in command)
    assert not any(arg.endswith(("null", "sda", "nvidia-modeset")) and str(dev) in arg for arg in command)
    # The nodes go onto the sandbox's own /dev, so they come after it.
    first_bind = command.index("--dev-bind")
    assert command[first_bind - 2:first_bind] == ["--dev", "/dev"]
    for path in ("/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices"):
        assert (["--ro-bind", path, path] == command[command.index(path) - 1:command.index(path) + 2]
                if Path(path).exists() else path not in command)


def test_sandbox_of_a_kernel_allotted_no_gpu_has_no_nvidia_node(tmp_path):
    command = sandbox.bwrap_command(writable=[tmp_path], readable=[])
    assert dev_binds(command) == []
    assert not any("nvidia" in arg for arg in command)
    assert "/sys/bus/pci" not in command
    assert gpu.kernel_env(gpu=None, memory_fraction=1.0)["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason=f"no sandbox here: {sandbox.bwrap_problem()}")
@pytest.mark.skipif(not Path("/var/tmp").is_dir(), reason="no /var/tmp for a fake /dev outside the sandbox's /tmp")
def test_a_sandboxed_process_sees_exactly_the_bound_nodes():
    # Outside /tmp: the sandbox's private /tmp is laid over anything bound under it.
    dev = Path(tempfile.mkdtemp(prefix="ag-fake-dev-", dir="/var/tmp"))
    try:
        fake_dev(dev, "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")
        command = sandbox.bwrap_command(writable=[], readable=[], devices=gpu.device_nodes(1, dev=dev))
        listing = subprocess.run(
            [*command, "/bin/sh", "-c", f"ls {dev}; echo --; ls /dev"],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        shutil.rmtree(dev)
    assert listing.returncode == 0, listing.stderr
    inside_fake, inside_dev = listing.stdout.split("--\n")
    assert inside_fake.split() == ["nvidia-uvm", "nvidia1", "nvidiactl"]
    assert not any(name.startswith("nvidia") for name in inside_dev.split())


# ---------------------------------------------------------------- wired into grading


def test_a_batch_child_grades_on_the_gpu_slot_it_was_given():
    from autograder.course import load_assignment
    from autograder.engine import batch

    assignment = load_assignment("linear_grading")
    submission = batch.Submission("alice", assignment.release_notebook)

    def child(**kw):
        return batch._child_command(submission, assignment, Path("out"), sandbox_mode="none",
                                    hide=[], **kw)

    on_gpu = child(gpu_index=1, per_gpu=3)
    assert on_gpu[on_gpu.index("--gpus") + 1] == "1" and on_gpu[on_gpu.index("--per-gpu") + 1] == "3"
    on_cpu = child(gpu_index=None, per_gpu=None)
    assert on_cpu[on_cpu.index("--gpus") + 1] == "none" and "--per-gpu" not in on_cpu


def test_a_kernel_without_a_gpu_sees_none_whatever_the_grader_inherited(tmp_path, monkeypatch):
    from autograder.engine import execute

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    env = execute.kernel_env(tmp_path, device=gpu.kernel_env(gpu=None, memory_fraction=1.0))
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["JAX_PLATFORMS"] == "cpu"


@pytest.mark.parametrize("runtime, device, warned", [
    (artifacts.KernelRuntime("jax", "gpu"), "GPU 0 (NVIDIA A100-SXM4-80GB, 45% of its memory)", False),
    (artifacts.KernelRuntime("jax", "cpu"), "CPU (GPU 0 was allotted but not used)", True),
    (artifacts.KernelRuntime(), "GPU 0 (NVIDIA A100-SXM4-80GB, 45% of its memory)", False),
])
def test_the_result_names_the_device_the_kernel_says_it_used(runtime, device, warned):
    """A kernel's record comes from its exporter (tests/test_doctor.py runs it in a real kernel)."""
    from autograder.engine import grade
    from autograder.results import GradingResult

    result = GradingResult("a", "a.ipynb", backend="tensorflow", device=grade._allotment(A100, 0.45))
    grade._report_device(result, runtime, A100)
    assert result.device == device and result.backend == (runtime.backend or "tensorflow")
    assert bool([n for n in result.staff_notes if n.startswith("DEVICE: GPU 0 was allotted")]) == warned


@pytest.mark.parametrize("written, expected", [
    ('{"backend": "jax", "device": "gpu"}', artifacts.KernelRuntime("jax", "gpu")),
    ('{"backend": "cntk", "device": "tpu"}', artifacts.KernelRuntime()),
    ('["gpu"]', artifacts.KernelRuntime()),
    ("not json", artifacts.KernelRuntime()),
])
def test_the_kernels_runtime_record_is_read_as_untrusted(tmp_path, written, expected):
    (tmp_path / artifacts.RUNTIME_LOG).write_text(written)
    assert artifacts.read_runtime(tmp_path / artifacts.RUNTIME_LOG) == expected
    assert artifacts.read_runtime(tmp_path / "absent.json") == artifacts.KernelRuntime()
