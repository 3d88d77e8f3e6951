"""Fixes for known breakages of the pinned OpenMMLab stack on this torch/numpy.

Each fix is armed at ``import cplugins`` and applied only when the module it
fixes is imported and only when the breakage is present (see ``needed`` checks).
``APPLIED`` records which ones ran. Nothing in site-packages is edited.
"""
from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from cplugins import import_hooks

#: names of the fixes that were applied in this process
APPLIED: list[str] = []


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


def _define_torchvision_ops(_module: ModuleType) -> None:
    """Define the ops torchvision registers fakes for at import, with CPU kernels."""
    if _torchvision_ops_loadable():
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


def arm() -> None:
    """Arm every fix; each runs when (and if) its module is imported."""
    import_hooks.before_import("torchvision", _define_torchvision_ops)
    import_hooks.when_imported("mmpretrain.evaluation.metrics.retrieval", _restore_numpy_in1d)
    import_hooks.when_imported("mmdet.models.dense_heads.ssd_head", _ssd_head_loss_cls)
    import_hooks.when_imported("mmengine.runner.checkpoint", _allow_checkpoint_globals)
    import_hooks.when_imported("mmengine.dist.utils", _skip_cuda_set_device_without_cuda)
