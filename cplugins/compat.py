"""Fixes for known breakages of the pinned OpenMMLab stack on a newer torch/numpy: opt-in.

Nothing happens at ``import cplugins`` or when a plugin is imported. :func:`apply` (one call,
before the OpenMMLab stack is imported) arms every fix; each then runs when the module it
fixes is imported (torchvision's when torch is, which torchvision imports before it registers
its ops), and only when the breakage is present. The project's own entry points
opt in: ``tools/*.py``, the ``cplugins`` command, the repository's ``conftest.py``, and the
``cplugins.templates.runtime`` module that configs saved by ``tools/train.py`` import
(``custom_imports``: the config opts in). :func:`report` (``cplugins doctor``) says which fixes
this environment needs and which ran. ``APPLIED`` records which ones ran. Nothing in
site-packages is edited.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

from cplugins import import_hooks

#: names of the fixes that were applied in this process
APPLIED: list[str] = []
#: whether :func:`apply` ran in this process
ARMED = False
#: fixes that :func:`apply` armed too late (their module had been imported before it)
TOO_LATE: list[str] = []


# --- torchvision: its compiled ops (a CUDA build) cannot load on this machine ----------
def _torchvision_ops_loadable() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True
    lib = os.path.join(list(spec.submodule_search_locations)[0], "_C.so")
    if not os.path.exists(lib):
        return False
    try:
        torch.ops.load_library(lib)
    except (OSError, RuntimeError):
        return False
    return True


def nms_reference(boxes, scores, iou_threshold: float):
    """Greedy NMS in plain torch; same contract as ``torchvision.ops.nms``.

    Args:
        boxes: (N, 4) x1, y1, x2, y2.  scores: (N,).
    Returns:
        int64 indices of kept boxes, by decreasing score.
    """
    import torch

    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    xx1 = torch.maximum(x1[:, None], x1[None])
    yy1 = torch.maximum(y1[:, None], y1[None])
    xx2 = torch.minimum(x2[:, None], x2[None])
    yy2 = torch.minimum(y2[:, None], y2[None])
    inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
    iou = inter / (areas[:, None] + areas[None] - inter).clamp(min=1e-12)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    overlaps = (iou > iou_threshold).cpu()
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def _define_torchvision_ops(_torch: ModuleType) -> None:
    """Define the ops torchvision registers fakes for at import, with CPU kernels. Runs once
    torch is imported: torchvision imports torch before its ``_meta_registrations`` registers
    those fakes, so this comes first whenever torchvision had not got there yet."""
    if "torchvision._meta_registrations" in sys.modules or _torchvision_ops_loadable():
        return
    import torch

    global _TORCHVISION_LIB
    _TORCHVISION_LIB = torch.library.Library("torchvision", "DEF")
    _TORCHVISION_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_LIB.impl("nms", nms_reference, "CPU")
    APPLIED.append("torchvision-ops")


_TORCHVISION_LIB = None


# --- numpy >= 2.4 removed np.in1d; mmpretrain's retrieval metrics call it ------------------
def in1d(ar1, ar2, assume_unique: bool = False, invert: bool = False):
    """``numpy.in1d`` as numpy documented it: ``isin`` on the flattened first array."""
    import numpy as np

    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def _restore_numpy_in1d(_module: ModuleType) -> None:
    import numpy as np

    if "in1d" not in np.__dict__:
        np.in1d = in1d
        APPLIED.append("numpy-in1d")


# --- mmdet 3.3.0 SSDHead.predict reads self.loss_cls, which SSDHead never sets --------------
def _ssd_head_loss_cls(module: ModuleType) -> None:
    head = module.SSDHead
    if not hasattr(head, "loss_cls"):
        # SSD computes its classification loss inline (softmax CE with hard negative mining);
        # predict only asks loss_cls for ``custom_cls_channels``, which SSD does not use.
        head.loss_cls = None
        APPLIED.append("mmdet-ssd-loss-cls")


# --- torch >= 2.6 loads checkpoints with weights_only=True: allow what mmengine saves -------
def checkpoint_safe_globals() -> list:
    """Types an mmengine checkpoint holds besides tensors (its ``meta`` and message hub)."""
    import numpy as np
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    numpy_types = [np.ndarray, np.dtype, type(np.dtype("float64")), type(np.dtype("float32")),
                   type(np.dtype("int64")), type(np.dtype("int32")), type(np.dtype("bool"))]
    reconstructors = []
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        reconstructors += [module._reconstruct, module.scalar]
    return [HistoryBuffer, ConfigDict, *numpy_types, *reconstructors]


def _reduce_history_buffer(buffer):
    """Pickle a HistoryBuffer as a constructor call on its arrays.

    Its own ``__getstate__`` pickles the class-level statistics functions, which protocol 2
    (``torch.save``'s) writes as ``builtins.getattr`` calls: allowlisting ``getattr`` would
    switch the protection off in all but name. The functions live on the class anyway.
    """
    return type(buffer), (buffer._log_history, buffer._count_history, buffer.max_length)


def _allow_checkpoint_globals(_module: ModuleType) -> None:
    import copyreg

    import torch.serialization
    from mmengine.logging import HistoryBuffer

    if not hasattr(torch.serialization, "add_safe_globals"):
        return  # torch < 2.4 loads everything (weights_only defaults to False there)
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    APPLIED.append("torch-load-safe-globals")


# --- mmengine's pytorch/slurm/mpi launchers call torch.cuda.set_device even on CPU-only torch --
def _skip_cuda_set_device_without_cuda(module: ModuleType) -> None:
    """Let mmengine's own launchers start CPU (gloo) process groups.

    ``init_dist`` pins each process to its GPU with ``torch.cuda.set_device(local_rank)``;
    a CPU-only torch build has no such call (AttributeError). Without CUDA there is nothing to
    pin, so the call is skipped while mmengine's launcher runs; with CUDA nothing changes.
    """
    import functools

    import torch

    if torch.cuda.is_available():
        return
    for name in ("_init_dist_pytorch", "_init_dist_mpi", "_init_dist_slurm"):
        original = getattr(module, name, None)
        if original is None:
            continue

        @functools.wraps(original)
        def launcher(*args, _original=original, **kwargs):
            set_device = torch.cuda.set_device
            torch.cuda.set_device = lambda device: None
            try:
                return _original(*args, **kwargs)
            finally:
                torch.cuda.set_device = set_device

        setattr(module, name, launcher)
    APPLIED.append("mmengine-cpu-launcher")


@dataclass(frozen=True)
class Fix:
    """One fix: what it repairs, the module whose import applies it, whether it is needed."""

    name: str
    module: str
    problem: str
    #: True: the breakage is present here; False: it is not; None: the library is not
    #: installed. May import the library (``cplugins doctor`` does; ``apply`` does not).
    needed: Callable[[], bool | None]


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _torchvision_needed() -> bool | None:
    return None if not _installed("torchvision") else not _torchvision_ops_loadable()


def _in1d_needed() -> bool | None:
    if not _installed("mmpretrain"):
        return None
    import numpy as np

    return np.__dict__.get("in1d") in (None, in1d)


def _ssd_needed() -> bool | None:
    """Read from mmdet's sources (nothing imported): ``SSDHead`` skips ``AnchorHead.__init__``
    (which sets ``loss_cls``) and never sets it, while the dense heads' predict reads it."""
    spec = importlib.util.find_spec("mmdet")
    if spec is None or not spec.submodule_search_locations:
        return None
    heads = os.path.join(list(spec.submodule_search_locations)[0], "models", "dense_heads")
    try:
        with open(os.path.join(heads, "ssd_head.py"), encoding="utf-8") as f:
            ssd = f.read()
        with open(os.path.join(heads, "base_dense_head.py"), encoding="utf-8") as f:
            base = f.read()
    except OSError:
        return None
    skips_anchor_init = "super(AnchorHead, self).__init__" in ssd
    return (skips_anchor_init and "self.loss_cls" in base
            and not re.search(r"self\.loss_cls\s*=", ssd))


def _safe_globals_needed() -> bool | None:
    """torch >= 2.6 loads with ``weights_only=True`` by default (metadata only, no import)."""
    if not _installed("mmengine"):
        return None
    from packaging.version import Version

    try:
        return Version(metadata.version("torch")).release[:2] >= (2, 6)
    except metadata.PackageNotFoundError:
        return None


def _launcher_needed() -> bool | None:
    if not _installed("mmengine") or not _installed("torch"):
        return None
    import torch

    return not torch.cuda.is_available()


FIXES: tuple[Fix, ...] = (
    Fix("torchvision-ops", "torchvision",
        "torchvision's compiled ops do not load (a CUDA build without CUDA): importing "
        "torchvision fails; the fix defines torchvision::nms with a plain-torch CPU kernel",
        _torchvision_needed),
    Fix("numpy-in1d", "mmpretrain.evaluation.metrics.retrieval",
        "numpy >= 2.4 removed numpy.in1d, which mmpretrain's retrieval metrics call; the fix "
        "restores it as numpy documented it (isin on the flattened first array)",
        _in1d_needed),
    Fix("mmdet-ssd-loss-cls", "mmdet.models.dense_heads.ssd_head",
        "mmdet's SSDHead.predict reads self.loss_cls, which SSDHead never sets; the fix sets "
        "it to None (SSD computes its classification loss inline)", _ssd_needed),
    Fix("torch-load-safe-globals", "mmengine.runner.checkpoint",
        "torch >= 2.6 loads checkpoints weights-only: mmengine's own checkpoints (HistoryBuffer, "
        "ConfigDict, numpy types in meta) do not load; the fix allowlists exactly those types",
        _safe_globals_needed),
    Fix("mmengine-cpu-launcher", "mmengine.dist.utils",
        "mmengine's pytorch/slurm/mpi launchers call torch.cuda.set_device, which a torch "
        "without CUDA refuses; the fix skips that call while they run, only without CUDA",
        _launcher_needed),
)


def apply() -> list[str]:
    """Opt in to every fix (idempotent): each runs when its module is imported (now, if it
    already is) and only where the breakage is present. Call it before importing the
    OpenMMLab stack (torchvision's fix must run before torchvision is imported).

    Returns:
        the names of the fixes applied so far (:data:`APPLIED`).
    """
    global ARMED
    if not ARMED:
        ARMED = True
        if "torchvision" in sys.modules and "torchvision-ops" not in APPLIED:
            TOO_LATE.append("torchvision-ops")
        import_hooks.when_imported("torch", _define_torchvision_ops)
        import_hooks.when_imported("mmpretrain.evaluation.metrics.retrieval",
                                   _restore_numpy_in1d)
        # mmdet's CityScapesMetric: cityscapesscripts' instance evaluation calls np.in1d too
        import_hooks.when_imported(
            "cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling",
            _restore_numpy_in1d)
        import_hooks.when_imported("mmdet.models.dense_heads.ssd_head", _ssd_head_loss_cls)
        import_hooks.when_imported("mmengine.runner.checkpoint", _allow_checkpoint_globals)
        import_hooks.when_imported("mmengine.dist.utils", _skip_cuda_set_device_without_cuda)
    return list(APPLIED)


#: ``apply`` under the name the README uses for it
apply_compat_fixes = apply


def report() -> list[dict]:
    """Each fix with ``needed`` (True / False / None: library not installed, or the error
    that stopped the check) and its state in this process: ``"applied"``, ``"armed"`` (runs
    when its module is imported), ``"not needed"`` (ran: no breakage), ``"too late"``
    (``apply`` came after its module was imported), ``"not applied"`` (no ``apply``)."""
    rows = []
    for fix in FIXES:
        try:
            needed: bool | str | None = fix.needed()
        except Exception as exc:  # the check itself broke: say so, do not guess
            needed = f"unknown ({type(exc).__name__}: {exc})"
        if fix.name in APPLIED:
            state = "applied"
        elif not ARMED:
            state = "not applied"
        elif fix.name in TOO_LATE:
            state = "too late"
        else:
            state = "armed" if fix.module not in sys.modules else "not needed"
        rows.append({"name": fix.name, "module": fix.module, "problem": fix.problem,
                     "needed": needed, "state": state})
    return rows
