"""Check a checkpoint before it is used: readable, and made for this model.

mmengine loads checkpoints non-strictly: a checkpoint of another model is loaded with a few
log lines and the rest left random. :func:`read_checkpoint` refuses files that are missing,
empty, truncated or not checkpoints with one line (before anything is built), and
:func:`compare_with_model` / :func:`mismatch_summary` say how a checkpoint differs from the
model, with what the checkpoint's ``meta`` says it was trained as. Loading goes through
``torch.load(weights_only=True)`` with the allowlist ``cplugins.compat`` installs on
mmengine's checkpoint module: exactly what mmengine's own loading allows.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import re
from dataclasses import dataclass, field

from cplugins.training.errors import CheckpointFileError

_SHOWN = 5


def is_local_path(path: str) -> bool:
    return "://" not in path


def read_checkpoint(path: str) -> dict:
    """Load ``path`` (weights-only, to CPU) or raise :class:`CheckpointFileError`, one line."""
    import mmengine.runner.checkpoint  # noqa: F401  (arms the weights-only allowlist)
    import torch

    if not osp.exists(path):
        raise CheckpointFileError(f"checkpoint {path} does not exist")
    if not osp.isfile(path):
        raise CheckpointFileError(f"checkpoint {path} is not a file")
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFileError(f"checkpoint {path} is empty (0 bytes): an interrupted or "
                                  "failed save; use an earlier checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()
        refused = next((line for line in reason if "GLOBAL" in line or "Unsupported" in line),
                       reason[0] if reason else "")
        raise CheckpointFileError(
            f"checkpoint {path} was refused by weights-only loading (it holds objects other "
            f"than tensors and plain data): {refused.strip()}") from None
    except Exception as exc:  # noqa: BLE001  (whatever torch.load trips on: a bad file)
        first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        if isinstance(exc, KeyError) or not first:  # e.g. "KeyError 101": not a pickle at all
            first = f"{type(exc).__name__} {first}".strip()
        raise CheckpointFileError(
            f"checkpoint {path} ({size} bytes) is truncated or not a PyTorch checkpoint: "
            f"{first}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointFileError(f"checkpoint {path} holds a {type(checkpoint).__name__}, "
                                  "not a state dict or an mmengine checkpoint")
    return checkpoint


def model_state(checkpoint: dict) -> dict:
    """The state dict inside ``checkpoint``, ``module.`` prefixes removed (as mmengine does)."""
    state = checkpoint.get("state_dict", checkpoint)
    return {re.sub(r"^module\.", "", key): value for key, value in state.items()}


@dataclass
class KeyComparison:
    """How a checkpoint's state dict differs from a model's."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    #: (key, shape in the checkpoint, shape in the model)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    matched: int = 0

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def compare_with_model(model, checkpoint: dict) -> KeyComparison:
    """Compare the keys and shapes of ``checkpoint`` with ``model.state_dict()``."""
    from mmengine.model import is_model_wrapper

    if is_model_wrapper(model):
        model = model.module
    expected = model.state_dict()
    given = model_state(checkpoint)
    result = KeyComparison(missing=[k for k in expected if k not in given],
                           unexpected=[k for k in given if k not in expected])
    for key, tensor in expected.items():
        if key in given and hasattr(given[key], "shape"):
            if tuple(given[key].shape) != tuple(tensor.shape):
                result.mismatched.append((key, tuple(given[key].shape), tuple(tensor.shape)))
            else:
                result.matched += 1
    return result


def _plugins_from_meta(meta: dict) -> str | None:
    lock = meta.get("cplugins_lock")
    if isinstance(lock, list):
        names = [f"{entry.get('distribution')} {entry.get('version', '')}".strip()
                 for entry in lock if isinstance(entry, dict) and entry.get("distribution")]
        if names:
            return ", ".join(names)
    text = meta.get("cfg")
    if isinstance(text, str):
        match = re.search(r"custom_imports\s*=\s*dict\([^)]*imports\s*=\s*\[([^\]]*)\]", text)
        if match:
            return ", ".join(re.findall(r"['\"]([\w.]+)['\"]", match.group(1))) or None
    return None


def trained_as(checkpoint: dict) -> str:
    """What the checkpoint's ``meta`` says it was trained as (one line, or 'no meta')."""
    meta = checkpoint.get("meta")
    if not isinstance(meta, dict):
        return "the checkpoint has no meta (a plain state dict, not saved by mmengine)"
    parts = []
    name = meta.get("config_name") or meta.get("experiment_name")
    if name:
        parts.append(f"config {name}")
    classes = (meta.get("dataset_meta") or {}).get("classes")
    if classes is not None:
        shown = ", ".join(map(str, list(classes)[:8]))
        more = f", ... ({len(classes)} in all)" if len(classes) > 8 else ""
        parts.append(f"{len(classes)} classes ({shown}{more})")
    plugins = _plugins_from_meta(meta)
    if plugins:
        parts.append(f"plugins {plugins}")
    if "iter" in meta:
        parts.append(f"iteration {meta['iter']}")
    return "trained as: " + ("; ".join(parts) if parts else "(meta without details)")


def mismatch_summary(path: str, comparison: KeyComparison, checkpoint: dict) -> str:
    """A few lines: counts and first examples of each kind of difference, and the meta."""
    lines = [f"checkpoint {path} does not match the model: {len(comparison.missing)} keys "
             f"missing, {len(comparison.unexpected)} unexpected, {len(comparison.mismatched)} "
             f"with another shape ({comparison.matched} match)"]
    if comparison.missing:
        lines.append("  missing: " + ", ".join(comparison.missing[:_SHOWN]))
    if comparison.unexpected:
        lines.append("  unexpected: " + ", ".join(comparison.unexpected[:_SHOWN]))
    if comparison.mismatched:
        lines.append("  shape (checkpoint vs model): " + ", ".join(
            f"{key} {list(a)} vs {list(b)}" for key, a, b in comparison.mismatched[:_SHOWN]))
    lines.append("  " + trained_as(checkpoint))
    return "\n".join(lines)
