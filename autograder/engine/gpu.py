"""GPU graders: which GPUs there are, how many kernels share one, and what a
kernel allotted a GPU needs in its environment and its sandbox.

- :func:`detect_gpus` asks ``nvidia-smi`` (none when it is absent or fails).
- :func:`select_gpus` and :func:`parse_per_gpu` read ``--gpus`` and
  ``--per-gpu``; :func:`default_per_gpu` sizes the sharing from the
  assignment's ``gpu_memory_gib`` (:class:`autograder.course.Limits`).
- :class:`GpuSlots` hands each grading worker a GPU, never more than its
  capacity of kernels on one GPU at once (a kernel started ahead of its
  submission's turn holds a slot of its own).
- :func:`kernel_env` and :func:`kernel_setup_code` give the kernel its GPU
  and its share of the card's memory, for each Keras backend;
  :func:`evaluator_env` keeps the trusted evaluator on the CPU unless the
  assignment opts in (``evaluate_on_gpu``).
- :func:`device_nodes` lists the ``/dev`` nodes to bind into the sandbox
  (``sandbox.bwrap_command(devices=...)``): the allotted GPU's and the
  driver's control nodes, no other GPU's.

The memory shares are a courtesy between honest kernels, not a defence: a
kernel can raise its own cap (the settings are read inside it), and GPU
memory is not watched by the grader's watchdog. See docs/security.md, "Not
defended".

A GPU is named two ways. Its *index* is its place in ``nvidia-smi``'s list
(what ``--gpus`` takes); its *minor* number names its device node
``/dev/nvidia<minor>``. The two usually agree but need not, and CUDA's own
numbering can differ from both, so the kernel is given its GPU by UUID.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.course import Limits
from autograder.errors import StopGrading

NVIDIA_SMI_QUERY = ("nvidia-smi", "--query-gpu=index,uuid,pci.bus_id,memory.total,name",
                    "--format=csv,noheader,nounits")
"""What :func:`detect_gpus` runs. The name comes last: it is the only field that may hold a comma."""

DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")
"""One folder per GPU, named by PCI address, whose ``information`` file gives its minor number."""

MEMORY_MARGIN = 0.10
"""Share of each card's memory no kernel is given: the driver, each kernel's
CUDA context (a few hundred MiB) and fragmentation."""

GPUS_RULE = "use auto (every GPU nvidia-smi lists), none (train on the CPU), or GPU indices separated by commas, e.g. 0,1"
PER_GPU_RULE = "use a whole number of kernels that may share one GPU at once, 1 or more"

CPU_ONLY_ENV = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
"""No GPU for CUDA, TensorFlow and torch, and JAX told to use the CPU
(rather than fail to start its GPU plugin and warn)."""

CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
"""The driver's device nodes shared by every GPU (beside each GPU's own ``nvidia<minor>``)."""


class GpuError(StopGrading):
    """A ``--gpus`` or ``--per-gpu`` value that cannot be used, or a GPU whose device node is missing."""


@dataclass(frozen=True)
class Gpu:
    """One GPU as the driver lists it."""

    index: int
    """Its place in ``nvidia-smi``'s list: what ``--gpus`` names."""
    name: str
    memory_mib: int
    """Total memory of the card, MiB."""
    uuid: str = ""
    """``GPU-...``: how the kernel's ``CUDA_VISIBLE_DEVICES`` names it."""
    minor: int | None = None
    """The minor number of its device node ``/dev/nvidia<minor>``; ``None``
    when the driver's ``/proc`` files could not tell (then the index is used)."""

    @property
    def node_number(self) -> int:
        """The number of its ``/dev/nvidia<n>`` node."""
        return self.index if self.minor is None else self.minor


# ---------------------------------------------------------------- detection


def detect_gpus(*, driver_gpus: Path = DRIVER_GPUS, timeout: float = 30) -> list[Gpu]:
    """The GPUs ``nvidia-smi`` lists, in its order; none when it is not
    installed, fails or takes longer than ``timeout`` seconds.
    ``driver_gpus`` is where the minor numbers are read (see :data:`DRIVER_GPUS`)."""
    if shutil.which(NVIDIA_SMI_QUERY[0]) is None:
        return []
    try:
        listing = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if listing.returncode != 0:
        return []
    return parse_nvidia_smi(listing.stdout, driver_gpus=driver_gpus)


def parse_nvidia_smi(text: str, *, driver_gpus: Path = DRIVER_GPUS) -> list[Gpu]:
    """The GPUs in :data:`NVIDIA_SMI_QUERY`'s output; a line that does not
    parse (a field reported as ``[N/A]``) is left out."""
    gpus = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",", 4)]
        if len(fields) != 5 or not fields[0].isdigit() or not fields[3].isdigit():
            continue
        index, uuid, bus_id, memory, name = fields
        gpus.append(Gpu(index=int(index), name=name, memory_mib=int(memory), uuid=uuid,
                        minor=_minor_number(bus_id, driver_gpus)))
    return gpus


def _minor_number(bus_id: str, driver_gpus: Path) -> int | None:
    """The ``Device Minor`` the driver records for the GPU at ``bus_id``
    (``nvidia-smi`` writes ``00000000:3B:00.0``, the driver's folder is ``0000:3b:00.0``)."""
    match = re.fullmatch(r"([0-9A-Fa-f]+):([0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])", bus_id)
    if match is None:
        return None
    folder = f"{int(match.group(1), 16):04x}:{match.group(2).lower()}"
    try:
        information = (driver_gpus / folder / "information").read_text()
    except OSError:
        return None
    found = re.search(r"^Device Minor:\s*(\d+)\s*$", information, re.MULTILINE)
    return int(found.group(1)) if found else None


# ---------------------------------------------------------------- options


def select_gpus(value: str, *, available: Sequence[Gpu]) -> list[Gpu]:
    """The GPUs ``--gpus value`` names among ``available`` (see :data:`GPUS_RULE`);
    a :class:`GpuError` that names the option and the rule otherwise."""
    if value == "auto":
        return list(available)
    if value == "none":
        return []
    if not re.fullmatch(r"\d+(,\d+)*", value):
        raise GpuError(f"--gpus {value!r}: {GPUS_RULE}.")
    indices = [int(part) for part in value.split(",")]
    twice = sorted({i for i in indices if indices.count(i) > 1})
    if twice:
        raise GpuError(f"--gpus {value!r} names GPU {', '.join(map(str, twice))} twice; {GPUS_RULE}.")
    by_index = {gpu.index: gpu for gpu in available}
    missing = [str(i) for i in indices if i not in by_index]
    if missing:
        listed = ", ".join(f"{g.index} ({g.name})" for g in available) or "no GPU"
        raise GpuError(f"--gpus {value!r}: this machine has no GPU {', '.join(missing)}; "
                       f"nvidia-smi lists {listed}.")
    return [by_index[i] for i in indices]


def parse_per_gpu(value: str) -> int:
    """The number ``--per-gpu value`` gives (see :data:`PER_GPU_RULE`), or a :class:`GpuError`."""
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise GpuError(f"--per-gpu {value!r}: {PER_GPU_RULE}.")
    return int(value)


def default_per_gpu(*, memory_mib: int, gpu_memory_gib: float) -> int:
    """How many kernels needing ``gpu_memory_gib`` GiB each fit on a card of
    ``memory_mib`` MiB, :data:`MEMORY_MARGIN` kept free; at least 1."""
    usable_gib = memory_mib / 1024 * (1 - MEMORY_MARGIN)
    return max(1, int(usable_gib // gpu_memory_gib))


def capacities(gpus: Sequence[Gpu], *, per_gpu: int | None, limits: Limits) -> dict[int, int]:
    """GPU index -> kernels it takes at once: ``per_gpu`` (``--per-gpu``)
    when given, else :func:`default_per_gpu` of each card for ``limits.gpu_memory_gib``."""
    return {gpu.index: per_gpu or default_per_gpu(memory_mib=gpu.memory_mib,
                                                  gpu_memory_gib=limits.gpu_memory_gib)
            for gpu in gpus}


def memory_share(per_gpu: int) -> float:
    """The share of a card's memory each of ``per_gpu`` kernels on it may use
    (0 to 1), :data:`MEMORY_MARGIN` kept free."""
    return (1 - MEMORY_MARGIN) / per_gpu


# ---------------------------------------------------------------- allotment


@dataclass(frozen=True)
class Slot:
    """One kernel's place, held from :meth:`GpuSlots.acquire` to :meth:`GpuSlots.release`."""

    gpu_index: int | None
    """The GPU it is on; ``None`` when there is no GPU."""


class GpuSlots:
    """GPU slots shared by grading workers (threads): ``capacity`` maps a GPU
    index to the kernels it takes at once. A slot is on the least-loaded GPU;
    :meth:`acquire` waits for one to free, or need not. With no GPU every
    slot is ``None``'s, handed out at once."""

    def __init__(self, capacity: Mapping[int, int]):
        if any(n < 1 for n in capacity.values()):
            raise GpuError(f"every GPU needs room for at least one kernel, not {dict(capacity)}")
        self.capacity = dict(capacity)
        self._free = dict(capacity)
        self._changed = threading.Condition()

    @property
    def total(self) -> int:
        """Kernels that can hold a GPU at once, all GPUs together (0 without a GPU)."""
        return sum(self.capacity.values())

    def acquire(self, *, wait: bool = True) -> Slot | None:
        """A slot, held until :meth:`release`; waits for one to free, or,
        without ``wait``, ``None`` when every slot is held. (A worker that
        already holds a slot must not wait for a second: workers each holding
        one and waiting for another would wait for ever.)"""
        if not self.capacity:
            return Slot(None)
        with self._changed:
            if not self._changed.wait_for(lambda: any(self._free.values()), timeout=None if wait else 0):
                return None
            index = max(self._free, key=lambda i: (self._free[i], -i))
            self._free[index] -= 1
        return Slot(index)

    def release(self, slot: Slot) -> None:
        if slot.gpu_index is None:
            return
        with self._changed:
            self._free[slot.gpu_index] += 1
            self._changed.notify()


# ---------------------------------------------------------------- the kernel


def kernel_env(*, gpu: Gpu | None, memory_fraction: float) -> dict[str, str]:
    """What the kernel's environment gets, on top of what it inherits, to use
    ``gpu`` alone and at most ``memory_fraction`` (0 to 1) of its memory;
    with no GPU, :data:`CPU_ONLY_ENV`: the kernel sees none.

    - CUDA: ``CUDA_VISIBLE_DEVICES`` names the GPU by UUID, which no
      numbering (CUDA's, ``nvidia-smi``'s, the device nodes') can confuse.
    - JAX: ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (no grab of 75 % of the
      card at start) and the memory fraction, which with preallocation off
      caps JAX's allocator (under its old and its new name).
    - TensorFlow: ``TF_FORCE_GPU_ALLOW_GROWTH=true``, so it takes memory as
      it needs it instead of the whole card. TensorFlow has no variable for a
      hard cap: that takes ``tf.config.set_logical_device_configuration(gpu,
      [tf.config.LogicalDeviceConfiguration(memory_limit=MIB)])`` in the
      kernel before TensorFlow first touches the GPU.
    - torch: ``PYTORCH_CUDA_ALLOC_CONF`` cannot set a fraction; the cap is
      :func:`kernel_setup_code`, run first in the kernel.
    """
    if gpu is None:
        return dict(CPU_ONLY_ENV)
    fraction = f"{memory_fraction:.3f}"
    return {
        "CUDA_VISIBLE_DEVICES": gpu.uuid or str(gpu.index),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # an index, if one is ever used, then means nvidia-smi's
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": fraction,
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }


def kernel_setup_code(*, gpu: Gpu | None, memory_fraction: float, backend: str) -> str | None:
    """One line of Python for the engine to run first in the kernel, or
    ``None`` when nothing is needed: with the torch backend and a GPU,
    ``torch.cuda.set_per_process_memory_fraction`` caps the kernel at
    ``memory_fraction`` (0 to 1) of the card. Its GPU is device 0 inside the
    kernel (the only one ``CUDA_VISIBLE_DEVICES`` shows)."""
    if gpu is None or backend != "torch":
        return None
    return f"import torch; torch.cuda.set_per_process_memory_fraction({memory_fraction:.3f}, 0)"


def device_nodes(minor: int, *, dev: Path = Path("/dev")) -> list[Path]:
    """The device nodes a kernel allotted the GPU ``/dev/nvidia<minor>``
    needs (:attr:`Gpu.node_number`), and nothing else of ``dev``: the GPU's
    own node and :data:`CONTROL_NODES` (``nvidia-uvm`` and ``nvidia-uvm-tools``
    where present). A :class:`GpuError` when the GPU's node or ``nvidiactl``
    is missing: the kernel could not use the GPU."""
    required = [dev / "nvidiactl", dev / f"nvidia{minor}"]
    missing = [str(node) for node in required if not node.exists()]
    if missing:
        raise GpuError(f"{' and '.join(missing)} missing: is the NVIDIA driver loaded? "
                       "(nvidia-smi creates the nodes on its first run)")
    optional = [dev / name for name in CONTROL_NODES[1:] if (dev / name).exists()]
    return [required[0], *optional, required[1]]


def evaluator_env(*, limits: Limits, gpu: Gpu | None, memory_fraction: float) -> dict[str, str]:
    """What the trusted evaluator's (the hidden suite's) environment gets:
    pinned to the CPU (:data:`CPU_ONLY_ENV`)
    unless the assignment sets ``evaluate_on_gpu``; then the kernel's own
    GPU and share (:func:`kernel_env`), which the grading still holds."""
    if limits.evaluate_on_gpu and gpu is not None:
        return kernel_env(gpu=gpu, memory_fraction=memory_fraction)
    return dict(CPU_ONLY_ENV)
