"""The checks of one plugin distribution (:func:`check_distribution`), in order, each a
:class:`~cplugins.check.result.CheckResult` with the fix. Imports torch / mmengine lazily."""
from __future__ import annotations

import copy
import json
import math
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from cplugins.check.example import Example
from cplugins.check.result import CheckResult
from cplugins.manager import PluginManager, PluginRecord, Registration, get_manager, import_target
from cplugins.spec import RegistryRef

#: checks of the distribution, then of each module in each registry (fixed, so that
#: :mod:`cplugins.testing` can parametrize over them before running anything)
DISTRIBUTION_CHECKS = ("hook-module", "light", "versions")
MODULE_CHECKS = ("import", "kind", "clash", "register", "build", "run", "deepcopy", "pickle",
                 "state_dict")
#: registry name -> (what it must hold, how to test it)
KIND_RULES: dict[str, str] = {
    "model": "a torch.nn.Module subclass",
    "hook": "an mmengine.hooks.Hook subclass",
    "dataset": "an mmengine.dataset.BaseDataset subclass",
    "transform": "an mmcv BaseTransform subclass or a callable class",
    "metric": "an mmengine.evaluator.BaseMetric subclass",
}
STOCK_PACKAGES = ("mmengine", "mmcv", "mmdet", "mmpretrain", "mmseg", "torch")
#: at most this many pixels per image / level in checks run from benchmark cases
_MAX_SIDE = 128


def canonical(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def records_of(distribution: str, manager: PluginManager | None = None) -> list[PluginRecord]:
    """The discovered plugins (entry points) of an installed distribution."""
    manager = manager or get_manager()
    manager.discover()
    return [r for r in manager.records.values()
            if not r.builtin and canonical(r.distribution) == canonical(distribution)]


def planned_ids(distribution: str) -> list[str]:
    """Ids of the checks :func:`check_distribution` reports, known from discovery alone."""
    ids = [f"{distribution}::{check}" for check in DISTRIBUTION_CHECKS]
    for record in records_of(distribution):
        for reg in record.registrations:
            ids += [f"{distribution}::{_subject(reg)}::{check}" for check in MODULE_CHECKS]
    return ids


def _subject(reg: Registration) -> str:
    return f"{reg.spec.name} -> {reg.registry}"


def _error(exc: BaseException) -> str:
    """``Type: message (at file:line)``: where it went wrong, for the fix."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


class _Skip(Exception):
    """A check that does not apply (or cannot run because an earlier one failed)."""


class _Warn(Exception):
    """A check that found something to fix that does not break the plugin."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


class _Fail(Exception):
    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


def _run(check: str, subject: str, fn: Callable[[], str], fix: str = "") -> CheckResult:
    """Run one check: its return value is the pass message; exceptions are verdicts."""
    start = time.perf_counter()
    try:
        message, status, fix_text = fn(), "pass", ""
    except _Skip as exc:
        message, status, fix_text = str(exc), "skip", ""
    except _Warn as exc:
        message, status, fix_text = str(exc), "warn", exc.fix
    except _Fail as exc:
        message, status, fix_text = str(exc), "fail", exc.fix
    except Exception as exc:  # the plugin's own code raised: that is the finding
        message, status, fix_text = _error(exc), "fail", fix
    return CheckResult(check, subject, status, message, fix_text,
                       round(time.perf_counter() - start, 3))


# -- distribution checks -------------------------------------------------------------------
def measure_hook_module(value: str) -> dict:
    """Import cost of a hook module in a fresh interpreter (after ``import cplugins``):
    ``{"seconds": float, "heavy": [packages]}``."""
    code = ("import json, sys, cplugins\n"
            "from cplugins.import_cost import measure_import\n"
            "from cplugins.manager import load_hook_module\n"
            "_, cost = measure_import(lambda: load_hook_module(sys.argv[1]))\n"
            "print(json.dumps({'seconds': cost.seconds, 'heavy': list(cost.heavy)}))\n")
    result = subprocess.run([sys.executable, "-c", code, value], capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise _Fail(f"importing {value} fails: {lines[-1] if lines else result.returncode}",
                    "make the hook module importable on its own (it may import only cplugins)")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _hook_module(records: list[PluginRecord], label: str, installed: bool
                 ) -> Callable[[], str]:
    def check() -> str:
        if not installed and not records:
            raise _Fail(f"{label} is not installed", f"pip install {label} (or pip install "
                        "-e PATH of its source); plugins are found through installed entry "
                        "points")
        if not records:
            raise _Fail(f"{label} declares no entry point in the 'cplugins' group",
                        "add [project.entry-points.cplugins] NAME = 'your_package.plugin' to "
                        "pyproject.toml and reinstall")
        failed = [r for r in records if r.status == "failed" and not r.specs]
        if failed:
            raise _Fail("; ".join(f"{r.hook_module}: {r.error}" for r in failed),
                        "the hook module must import (only cplugins) and its "
                        "cplugins_modules() must return a list of cplugins.ModuleSpec")
        return "; ".join(f"{r.hook_module} declares "
                         f"{', '.join(_subject(g) for g in r.registrations) or 'no module'}"
                         for r in records)
    return check


def _light(records: list[PluginRecord]) -> Callable[[], str]:
    from cplugins.import_cost import SLOW_SECONDS

    def check() -> str:
        if not records:
            raise _Skip("no hook module")
        parts = []
        for record in records:
            cost = measure_hook_module(record.hook_module)
            if cost["heavy"] or cost["seconds"] >= SLOW_SECONDS:
                pulled = (f"pulls in {', '.join(cost['heavy'])}" if cost["heavy"]
                          else "is slow")
                raise _Fail(f"{record.hook_module} {pulled} ({cost['seconds']:.2f} s to "
                            "import); `cplugins list` and every discovery pay for it",
                            "import only cplugins in the hook module; move heavy imports "
                            "into the modules the ModuleSpec targets name, or inside the "
                            "hook functions that need them")
            parts.append(f"{record.hook_module} imports in {cost['seconds']:.3f} s, "
                         "no heavy package")
        return "; ".join(parts)
    return check


def _versions(dist: metadata.Distribution | None, label: str) -> Callable[[], str]:
    def check() -> str:
        from cplugins import versions

        if dist is None:
            raise _Skip("not installed")
        problems = versions.version_problems(dist)
        if problems:
            raise _Fail(versions.describe(label, problems).split(". Fix: ")[0],
                        versions.describe(label, problems).split(". Fix: ")[-1])
        requirements = versions.stack_requirements(dist)
        if not requirements:
            raise _Warn("declares no version range for the OpenMMLab stack (mmdet, mmengine, "
                        "mmcv, mmpretrain, mmsegmentation, torch)",
                        "add the ranges it was tested with to the 'openmmlab' extra, e.g. "
                        "[project.optional-dependencies] openmmlab = ['mmdet>=3.0,<4'] "
                        "(checked by cplugins, a fork satisfies them, pip installs them only "
                        "with [openmmlab])")
        return ", ".join(f"{r} (installed {versions.installed_version(r.name)})"
                         for r in requirements)
    return check


# -- module checks -------------------------------------------------------------------------
def _kind_ok(registry_name: str, cls: Any) -> bool | None:
    """Whether ``cls`` is the right kind for a registry (None: no rule for that registry)."""
    if not isinstance(cls, type):
        return callable(cls) if registry_name == "transform" else False
    if registry_name == "model":
        from torch import nn

        return issubclass(cls, nn.Module)
    if registry_name == "hook":
        from mmengine.hooks import Hook

        return issubclass(cls, Hook)
    if registry_name == "dataset":
        from mmengine.dataset import BaseDataset

        return issubclass(cls, BaseDataset)
    if registry_name == "transform":
        return callable(cls) and (hasattr(cls, "transform") or "__call__" in dir(cls))
    if registry_name == "metric":
        from mmengine.evaluator import BaseMetric

        return issubclass(cls, BaseMetric)
    return None


def _lookup(registry, name: str) -> Any:
    """What a lookup of ``name`` finds in ``registry``, its ancestors or its children."""
    node = registry
    while node is not None:
        if name in node.module_dict:
            return node.module_dict[name]
        node = node.parent
    stack = list(registry.children.values())
    while stack:
        child = stack.pop()
        if name in child.module_dict:
            return child.module_dict[name]
        stack.extend(child.children.values())
    return None


def _owner(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    return f"{module}.{getattr(obj, '__qualname__', obj)}"


@contextmanager
def _scope(scope: str) -> Iterator[None]:
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope(scope):
        yield


def build(cfg: dict, registry: str = "mmdet::model", scope: str | None = None) -> Any:
    """Build ``cfg`` from ``registry`` (``"scope::name"``) with that scope as default scope
    (like a runner of that codebase); activates the installed plugins if ``type`` is unknown."""
    from cplugins.diagnose import explain_unknown_types
    from cplugins.registries import resolve

    ref = RegistryRef.parse(registry)
    target = resolve(ref)
    target.import_from_location()
    cfg = copy.deepcopy(dict(cfg))
    if isinstance(cfg.get("type"), str) and _lookup(target, cfg["type"]) is None:
        get_manager().activate_all()
    with _scope(scope or ref.scope), explain_unknown_types():
        return target.build(cfg)


def _small_inputs(example: Example) -> dict:
    """Generator parameters for a benchmark-case example, shrunk to check sizes."""
    params = {k: v for k, v in example.inputs.items() if k != "generator"}
    kwargs: dict[str, Any] = {"batch_size": 2}
    generator = example.inputs["generator"]
    if generator in ("feature_pyramid", "rois", "detection_batch"):
        kwargs["input_size"] = (_MAX_SIDE // 2, _MAX_SIDE // 2)
        if generator == "rois":
            params["rois_per_image"] = 16
    elif generator == "image":
        shape = params.get("shape", [])
        if len(shape) == 4 and shape[2] * shape[3] > _MAX_SIDE * _MAX_SIDE:
            kwargs["input_size"] = (_MAX_SIDE, _MAX_SIDE)
    return {"params": params, **kwargs}


def _transform_results() -> dict:
    import numpy as np

    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return {"img": img, "img_shape": (48, 64), "ori_shape": (48, 64), "img_path": None}


class ModuleChecks:
    """The checks of one module in one registry; each step uses what the earlier ones made."""

    def __init__(self, manager: PluginManager, record: PluginRecord, reg: Registration,
                 example: Example | None, tmp_dir: Path, existing: Any = None):
        self.manager, self.record, self.reg = manager, record, reg
        self.existing = existing  # what the registry held under the name before activation
        self.spec, self.ref = reg.spec, reg.registry
        self.example, self.tmp_dir = example, tmp_dir
        self.subject = _subject(reg)
        self.cls: Any = None
        self.obj: Any = None
        self.cfg: dict = {}
        self.inputs: Any = None
        self.failed_before = ""

    @property
    def scope(self) -> str:
        """The scope the example is built and run in: its own, else the registry's."""
        own = self.example.scope if self.example is not None else None
        return own or self.ref.scope

    def results(self) -> list[CheckResult]:
        steps = {"import": self._import, "kind": self._kind, "clash": self._clash,
                 "register": self._register, "build": self._build, "run": self._run_it,
                 "deepcopy": self._deepcopy, "pickle": self._pickle,
                 "state_dict": self._state_dict}
        out = []
        for name in MODULE_CHECKS:
            def guarded(step=steps[name]) -> str:
                if self.failed_before:
                    raise _Skip(f"not checked: {self.failed_before}")
                return step()
            result = _run(name, self.subject, guarded, self._fix(name))
            if result.status == "fail" and name in ("import", "kind", "register", "build"):
                self.failed_before = f"{name} failed"
            out.append(result)
        return out

    def _fix(self, check: str) -> str:
        return {
            "import": f"make {self.spec.target!r} importable (module path and class name as "
                      "in the ModuleSpec; its dependencies installed)",
            "build": "make the class build from its example config (arguments, defaults)",
            "run": "the module must run on its example inputs",
            "deepcopy": "keep only deep-copyable state (no open files, locks, generators) or "
                        "define __deepcopy__",
            "pickle": "keep module state picklable (no lambdas or local classes as attributes) "
                      "so it survives DataLoader workers and multi-process training",
            "state_dict": "keep every tensor that matters in parameters or registered buffers",
            "gradient": "the output must depend on the parameters (no .detach(), no "
                        "torch.no_grad() in the training path)",
        }.get(check, "")

    # each returns its pass message, or raises _Skip / _Warn / _Fail / the plugin's error
    def _import(self) -> str:
        self.cls = import_target(self.spec.target)
        return f"{self.spec.target} imports"

    def _kind(self) -> str:
        ok = _kind_ok(self.ref.name, self.cls)
        rule = KIND_RULES.get(self.ref.name)
        if ok is None:
            raise _Skip(f"no kind rule for the {self.ref.name!r} registry")
        if not ok:
            what = self.cls.__name__ if isinstance(self.cls, type) else type(self.cls).__name__
            bases = ", ".join(b.__name__ for b in getattr(self.cls, "__mro__", ())[1:-1])
            raise _Fail(f"{self.spec.target} is {what}{f' ({bases})' if bases else ''}, not "
                        f"{rule}, which the {self.ref} registry holds",
                        f"subclass the right base, or declare the registry that matches what "
                        f"it is ({', '.join(f'{k}: {v}' for k, v in KIND_RULES.items())})")
        from cplugins.registries import scope_mismatch

        mismatch = scope_mismatch(self.cls, self.ref)
        if mismatch:
            raise _Fail(mismatch.message, f"register it into {mismatch.expected}::"
                        f"{self.ref.name} (the ModuleSpec's registries), or subclass a "
                        f"{self.ref.scope} base")
        return f"{rule}"

    def _clash(self) -> str:
        from cplugins.registries import scope_installed

        others = [f"{r.label} ({s.target})" for r in self.manager.records.values()
                  if canonical(r.distribution) != canonical(self.record.distribution)
                  for g in r.registrations for s in (g.spec,)
                  if s.name == self.spec.name and g.registry == self.ref]
        if others:
            raise _Fail(f"{self.spec.name!r} in {self.ref} is also declared by "
                        f"{', '.join(others)}; a config using it is refused while both are "
                        "installed", "give the module a name of its own (ModuleSpec name "
                        "and your configs), e.g. prefixed with your project's name")
        if not scope_installed(self.ref):
            raise _Skip(f"{self.ref.package} is not installed")
        existing = self.existing
        if existing is None or existing is self.cls:
            return f"no stock module and no other distribution named {self.spec.name!r}"
        if getattr(existing, "cplugins_failed", False) and \
                getattr(existing, "cplugins_error", "") != "PluginConflictError":
            return f"no stock module and no other distribution named {self.spec.name!r}"
        if getattr(existing, "cplugins_failed", False):
            found = (existing.__doc__ or "").split(" so ")[0]
        else:
            top = _owner(existing).split(".")[0]
            found = (f"{top}'s stock {_owner(existing)}" if top in STOCK_PACKAGES
                     else _owner(existing))
        raise _Fail(f"{self.spec.name!r} is already taken in {self.ref} (visible from it) by "
                    f"{found}: configs that use type={self.spec.name!r} are refused while "
                    "this plugin is active", "give the module a name of its own (ModuleSpec "
                    "name and your configs), e.g. prefixed with your project's name")

    def _register(self) -> str:
        self.manager.activate(self.record)
        if self.reg.status == "registered":
            return f"registered as {self.spec.name!r} in {self.ref}"
        if self.reg.status == "skipped":
            raise _Skip(self.reg.reason)
        raise _Fail(f"{self.reg.status}: {self.reg.reason or self.record.error}",
                    "see the reason; `cplugins list --activate` shows the same")

    def _build(self) -> str:
        if self.example is None:
            raise _Warn(f"no example config for {self.spec.name}, so it was not built or run",
                        "declare one in the hook module: @hookimpl def cplugins_examples(): "
                        f"return [Example({self.spec.name!r}, dict(...), inputs=...)] "
                        "(from cplugins.check import Example), or a benchmark case "
                        f"whose module type is {self.spec.name!r}")
        cfg = dict(self.example.cfg)
        if self.example.setup:
            cfg.update(import_target(self.example.setup)(self.tmp_dir))
        self.cfg = cfg
        self.obj = build(cfg, str(self.ref), self.scope)
        if not isinstance(self.obj, self.cls if isinstance(self.cls, type) else object):
            raise _Fail(f"type={self.spec.name!r} built {_owner(type(self.obj))}, not "
                        f"{self.spec.target}", "the name resolves to another module: see the "
                        "clash check")
        return f"built from the {self.example.source} example"

    def _is_module(self) -> bool:
        from torch import nn

        return isinstance(self.obj, nn.Module)

    def _run_it(self) -> str:
        if self.obj is None:
            raise _Skip("not built")
        if self.ref.name == "model":
            return self._forward_backward()
        if self.ref.name == "dataset":
            if len(self.obj) == 0:
                raise _Fail("the example dataset is empty", "check the annotation loading "
                            "(load_data_list) on the example data")
            item = self.obj[0]
            if not isinstance(item, dict):
                raise _Fail(f"dataset[0] is a {type(item).__name__}, not a dict",
                            "return the data_info dict (pipeline applied) from __getitem__")
            return f"{len(self.obj)} items; dataset[0] has {', '.join(sorted(item)[:6])}"
        if self.ref.name == "transform":
            results = _transform_results()
            shape, dtype = results["img"].shape, results["img"].dtype
            out = self.obj(results)
            if out is not None and not isinstance(out, dict):
                raise _Fail(f"returned a {type(out).__name__}, not a results dict (or None)",
                            "transform() must return the results dict")
            if out is not None and "img" in out and out["img"].dtype != dtype:
                raise _Warn(f"changed the image dtype {dtype} -> {out['img'].dtype}",
                            "keep the dtype unless that is the transform's purpose")
            return f"transformed a {shape[0]}x{shape[1]} uint8 image"
        raise _Skip(f"nothing to run for the {self.ref.name!r} registry (a hook runs in a "
                    "training: cplugins.testing's cplugins_train)")

    def _forward_backward(self) -> str:
        import torch

        from cplugins.inputs import generate, scalar_for_backward

        if self.example.inputs is None:
            raise _Warn("the example declares no inputs, so forward/backward was not run",
                        "give the example inputs={'generator': ...} (as a benchmark case)")
        if self.example.source.startswith("benchmark"):
            small = _small_inputs(self.example)
            self.inputs = generate(self.example.inputs["generator"], small.pop("params"),
                                   **small)
        else:
            self.inputs = generate(self.example.inputs["generator"],
                                   {k: v for k, v in self.example.inputs.items()
                                    if k != "generator"})
        module = self.obj.train()
        args = self.inputs.train_args if self.inputs.train_args is not None else \
            self.inputs.args
        with _scope(self.scope):
            out = getattr(module, self.example.train_method)(*args, **self.inputs.kwargs)
        params = [p for p in module.parameters() if p.requires_grad]
        try:
            total = scalar_for_backward(out, self.spec.name)
        except ValueError:
            what = (f"none of its {len(params)} parameters received a gradient" if params
                    else "no gradient reaches its inputs")
            raise _Fail(f"{what}: its {self.example.train_method}() output does not require "
                        "grad", self._fix("gradient")) from None
        if not torch.isfinite(total):
            raise _Fail(f"{self.example.train_method}() output is not finite ({total.item()})",
                        "check the numerics on the example inputs")
        module.zero_grad(set_to_none=True)
        total.backward()
        with_grad = [p for p in params if p.grad is not None]
        if params and not with_grad:
            raise _Fail(f"none of its {len(params)} parameters received a gradient",
                        self._fix("gradient"))
        if any(not torch.isfinite(p.grad).all() for p in with_grad):
            raise _Fail("non-finite gradients", "check the numerics on the example inputs")
        module.zero_grad(set_to_none=True)
        if params:
            reached = f"gradients in {len(with_grad)}/{len(params)} parameter tensors"
        else:  # a loss, say: the gradient must reach what it is computed from
            leaves = [t for t in self.inputs.tensors() if t.requires_grad]
            if leaves and not any(t.grad is not None and t.grad.abs().sum() > 0
                                  for t in leaves):
                raise _Fail("no gradient reaches its inputs", self._fix("gradient"))
            reached = "gradients reach its inputs" if leaves else "no parameters"
        return f"{self.example.train_method}+backward on {self.inputs.shapes}: {reached}"

    def _same_state(self, other: Any) -> None:
        import torch

        if not self._is_module():
            return
        mine, theirs = self.obj.state_dict(), other.state_dict()
        if list(mine) != list(theirs) or not all(
                torch.equal(mine[k], theirs[k]) for k in mine if torch.is_tensor(mine[k])):
            raise _Fail("the copy's state_dict differs from the original's",
                        "keep state in parameters and buffers that copy as they are")

    def _deepcopy(self) -> str:
        if self.obj is None:
            raise _Skip("not built")
        self._same_state(copy.deepcopy(self.obj))
        return "deepcopy keeps the state" if self._is_module() else "deepcopy works"

    def _pickle(self) -> str:
        if self.obj is None:
            raise _Skip("not built")
        data = pickle.dumps(self.obj)
        self._same_state(pickle.loads(data))
        return f"pickles ({len(data)} bytes) and loads back"

    def _state_dict(self) -> str:
        import torch

        if self.obj is None:
            raise _Skip("not built")
        if not self._is_module():
            raise _Skip("not an nn.Module: no state_dict")
        state = self.obj.state_dict()
        fresh = build(self.cfg, str(self.ref), self.scope)
        missing, unexpected = fresh.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise _Fail(f"a fresh instance does not load the state_dict: missing "
                        f"{list(missing)[:5]}, unexpected {list(unexpected)[:5]}",
                        "build the same submodules for the same config")
        if self.inputs is None:
            return f"{len(state)} entries load into a fresh instance"
        outputs = []
        for module in (self.obj, fresh):
            module.eval()
            with torch.no_grad(), _scope(self.scope):
                outputs.append(module(*self.inputs.args, **self.inputs.kwargs))
        from cplugins.inputs import flatten_tensors

        pairs = list(zip(flatten_tensors(outputs[0]), flatten_tensors(outputs[1])))
        worst = max(((a.float() - b.float()).abs().max().item() for a, b in pairs
                     if a.shape == b.shape and a.numel()), default=0.0)
        if not pairs or not math.isfinite(worst) or worst > 1e-5:
            raise _Fail(f"after loading the state_dict into a fresh instance, outputs differ "
                        f"(max abs difference {worst:.3g}): state lives outside parameters "
                        "and buffers", self._fix("state_dict"))
        return f"{len(state)} entries; a fresh instance loading them gives the same outputs"


def examples_of(record: PluginRecord, manager: PluginManager) -> dict[str, Example]:
    """The plugin's examples by module name: ``cplugins_examples`` first, then its benchmark
    cases of kind ``module`` whose type is one of its modules."""
    import dataclasses

    found: dict[str, Example] = {}
    hook = getattr(manager.pm.hook, "cplugins_examples", None)
    for impl in hook.get_hookimpls() if hook is not None else []:
        if impl.plugin is record.plugin:
            for example in impl.function() or []:
                if not isinstance(example, Example):
                    raise TypeError(f"cplugins_examples() of {record.hook_module} must return "
                                    f"cplugins.check.Example objects, got {example!r}")
                found.setdefault(example.name, example)
    names = {s.name for s in record.specs}
    targets = {s.target: s.name for s in record.specs}
    hook = getattr(manager.pm.hook, "cplugins_benchmark_cases", None)
    for impl in hook.get_hookimpls() if hook is not None else []:
        if impl.plugin is not record.plugin:
            continue
        for case in impl.function() or []:
            kind = case.module.get("type") if case.kind == "module" else None
            name = kind if kind in names else targets.get(kind)
            if name and name not in found:
                scopes = {r.scope for s in record.specs if s.name == name for r in s.registries}
                # the case's scope (default mmdet) where the module registers into it or the
                # root registry; else the module's own scope
                found[name] = dataclasses.replace(
                    Example(name, dict(case.module, type=name),
                            scope=case.scope if scopes & {case.scope, "mmengine"} else None,
                            inputs=case.inputs, train_method=case.train_method),
                    source=f"benchmark case {case.name!r}")
    return found


def _existing(reg: Registration) -> Any:
    """What a lookup of the module's name finds in its registry now (stock modules loaded)."""
    from cplugins.registries import resolve, scope_installed

    if not scope_installed(reg.registry):
        return None
    registry = resolve(reg.registry)
    registry.import_from_location()
    return _lookup(registry, reg.spec.name)


def check_distribution(distribution: str, manager: PluginManager | None = None
                       ) -> list[CheckResult]:
    """Every check of an installed distribution, in order."""
    manager = manager or get_manager()
    records = records_of(distribution, manager)
    try:
        dist = metadata.distribution(distribution)
        label = f"{dist.metadata['Name']} {dist.version}"
    except metadata.PackageNotFoundError:
        dist, label = None, distribution
    results = [_run("hook-module", distribution, _hook_module(records, label, dist is not None)),
               _run("light", distribution, _light(records)),
               _run("versions", distribution, _versions(dist, label))]
    with tempfile.TemporaryDirectory(prefix="cplugins-check-") as tmp:
        for record in records:
            try:
                examples = examples_of(record, manager)
                problem = ""
            except Exception as exc:  # a broken example hook: every build check says so
                examples, problem = {}, _error(exc)
            before = {id(reg): _existing(reg) for reg in record.registrations}
            for reg in record.registrations:
                checks = ModuleChecks(manager, record, reg, examples.get(reg.spec.name),
                                      Path(tmp), before[id(reg)])
                module_results = checks.results()
                for result in module_results:
                    result.distribution = distribution
                if problem:
                    for result in module_results:
                        if result.check == "build":
                            result.status, result.message = "fail", problem
                            result.fix = "cplugins_examples() must return Example objects"
                results += module_results
    return results
