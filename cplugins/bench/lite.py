"""Module benchmarks without mmcv's compiled ops (mmcv-lite, e.g. a bare CUDA image).

``import mmdet.models`` imports every mmdet model, and many of them import ``mmcv.ops``, which
fails without the compiled extension. mmdet's FPN itself is pure Python (``mmcv.cnn``
``ConvModule``). :func:`enable_lite_mmdet` makes ``mmdet.models`` and ``mmdet.models.necks``
plain namespace packages (their real directories, without running their ``__init__``) and
imports ``mmdet.models.necks.fpn``: FPN registers into ``mmdet::model`` as usual and
``from mmdet.models.necks import FPN`` (AugFPN's import) works. Other mmdet modules can
still be imported one by one; those that need the compiled ops fail with mmcv's error.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

from cplugins.bench.measure import mmcv_ops_available

#: attribute set on the namespace stand-ins this module installs
LITE_MARK = "cplugins_lite"


def lite_active() -> bool:
    """Whether :func:`enable_lite_mmdet` replaced ``mmdet.models`` in this process."""
    return bool(getattr(sys.modules.get("mmdet.models"), LITE_MARK, False))


def enable_lite_mmdet(force: bool = False) -> bool:
    """Install the lite ``mmdet.models`` when mmcv's ops are missing (or ``force``).

    Returns True when it is (now) active; False when not needed (ops present), impossible
    (mmdet not installed) or too late (``mmdet.models`` already imported for real).
    """
    if lite_active():
        return True
    if "mmdet.models" in sys.modules or (not force and mmcv_ops_available()):
        return False
    spec = importlib.util.find_spec("mmdet")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(list(spec.submodule_search_locations)[0])
    import mmdet

    parent = mmdet
    for name, folder in (("mmdet.models", root / "models"),
                         ("mmdet.models.necks", root / "models" / "necks")):
        package = types.ModuleType(name, f"cplugins lite namespace for {name} (no __init__ run; "
                                         "see cplugins.bench.lite)")
        package.__path__ = [str(folder)]
        package.__package__ = name
        setattr(package, LITE_MARK, True)
        sys.modules[name] = package
        setattr(parent, name.rsplit(".", 1)[1], package)
        parent = package
    fpn = importlib.import_module("mmdet.models.necks.fpn")
    sys.modules["mmdet.models.necks"].FPN = fpn.FPN
    return True
