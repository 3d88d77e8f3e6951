"""Benchmark cases: what a plugin declares through ``cplugins_benchmark_cases`` (no torch).

A case names the module to time (a config dict built in a registry scope, or an import target),
the baseline it is compared with, and how its inputs are generated. Inputs are *described* here
(a generator name plus parameters); :mod:`cplugins.inputs` builds the tensors.

Three kinds:

* ``kind="module"``: ``module`` / ``baseline`` are config dicts (``type`` is a name in the
  ``scope``'s ``model`` registry or ``"package.module:Class"``); timed as forward and
  forward+backward.
* ``kind="detector"``: ``config`` is an mmengine config (a path or ``"mmdet::..."``);
  ``module`` / ``baseline`` are cfg-options (``{"model.neck.type": "AugFPN"}``) applied to it;
  timed as a train step and as inference on synthetic batches.
* ``kind="dataloader"``: ``module`` / ``baseline`` are mmengine dataloader configs (a
  ``dataset`` dict and optionally ``batch_size``, ``sampler``, ``collate_fn``); the inputs
  generator is ``"package.module:func"``, called as ``func(root, **params)`` to write the data
  under the folder ``root`` and return the values of the ``"{placeholders}"`` in the configs'
  strings; timed as samples/s over full passes, once per worker count in ``workers``.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cplugins.spec import SCOPE_PACKAGES

#: input generators implemented by :mod:`cplugins.inputs` (or give "package.module:func")
GENERATORS: dict[str, str] = {
    "image": "images (N, C, H, W); params: shape",
    "feature_pyramid": "backbone feature maps of an image; params: channels, strides, "
                       "image_size, batch, single",
    "cls_features": "pooled features (N, C) for a classification head, plus labels for its "
                    "loss; params: feats, labels ('int' | 'multilabel'), num_classes",
    "scores": "logits (N, C) and labels for a loss; params: logits, labels ('int' | "
              "'multilabel'), weight (optional shape)",
    "rois": "feature pyramid plus RoIs (K, 5) for an RoI extractor; params: channels, "
            "strides, image_size, batch, rois_per_image",
    "detection_batch": "synthetic detection batch (images and boxes) for a detector; params: "
                       "image_size, batch, num_gt",
}
KINDS = ("module", "detector", "dataloader")
_NAME = re.compile(r"^[A-Za-z0-9][\w.+-]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_target(text: object) -> bool:
    """Whether ``text`` is an import target ``"package.module:attr"``."""
    return isinstance(text, str) and bool(_TARGET.match(text))


def _check_config(case: str, label: str, cfg: object, kind: str) -> dict:
    if not isinstance(cfg, Mapping):
        raise ValueError(f"benchmark case {case!r}: {label} must be a dict, got {cfg!r}")
    cfg = dict(cfg)
    if kind == "module":
        kind_type = cfg.get("type")
        if not isinstance(kind_type, str) or not kind_type:
            raise ValueError(f"benchmark case {case!r}: {label} needs a 'type' (a registered "
                             f"name or 'package.module:Class'), got {cfg!r}")
    elif kind == "dataloader":
        dataset = cfg.get("dataset")
        if not isinstance(dataset, Mapping) or not isinstance(dataset.get("type"), str):
            raise ValueError(f"benchmark case {case!r}: {label} of a dataloader case is an "
                             "mmengine dataloader config with a dataset=dict(type=...), got "
                             f"{cfg!r}")
    elif not all(isinstance(k, str) and k for k in cfg):
        raise ValueError(f"benchmark case {case!r}: {label} of a detector case holds "
                         f"cfg-options with dotted string keys, got {cfg!r}")
    return cfg


@dataclass(frozen=True)
class BenchmarkCase:
    """One benchmark a plugin declares (plain data; built and timed by ``cplugins bench``).

    Args:
        name: unique case name, e.g. ``"AugFPN"`` (letters, digits, ``_.+-``).
        module: config of the module to time (``kind="module"``), or cfg-options applied to
            ``config`` (``kind="detector"``).
        inputs: ``{"generator": NAME, **params}``, NAME one of :data:`GENERATORS` or an import
            target ``"package.module:func"``.
        baseline: config (or cfg-options) of the comparison point; ``None``: no baseline.
        baseline_label: how the baseline is shown; defaults to its ``type``.
        scope: registry scope the configs are built in (``"mmdet"``, ``"mmpretrain"``, ...).
        kind: ``"module"``, ``"detector"`` or ``"dataloader"``.
        config: the detector config (path or ``"mmdet::..."``), only with ``kind="detector"``.
        baseline_config: the baseline's detector config when it differs from ``config``.
        train_method: method called for forward+backward (``"loss"`` for mmpretrain heads,
            whose generator then supplies loss inputs); forward timing always calls ``forward``.
        weight_sync: ``"package.module:func"`` called as ``func(module, baseline)`` after both
            are built, to give them the same weights.
        equivalent: module and baseline compute the same function (after ``weight_sync``):
            their forward outputs are compared and the difference reported.
        needs_ops: the case needs mmcv's compiled ops (RoIAlign, NMS): reported as skipped
            where they are missing (mmcv-lite).
        description: one line shown by ``cplugins bench --list``.
        workers: dataloader worker counts measured (``kind="dataloader"``; each a separate
            measurement, persistent workers).
    """

    name: str
    module: dict
    inputs: dict
    baseline: dict | None = None
    baseline_label: str = ""
    scope: str = "mmdet"
    kind: str = "module"
    config: str | None = None
    baseline_config: str | None = None
    train_method: str = "forward"
    weight_sync: str | None = None
    equivalent: bool = False
    needs_ops: bool = False
    description: str = ""
    workers: tuple[int, ...] = (0, 2)
    provider: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"benchmark case name {self.name!r} must be letters, digits and "
                             "'_.+-', starting with a letter or digit")
        if self.kind not in KINDS:
            raise ValueError(f"benchmark case {self.name!r}: kind={self.kind!r}; allowed: "
                             f"{', '.join(KINDS)}")
        if self.scope not in SCOPE_PACKAGES:
            raise ValueError(f"benchmark case {self.name!r}: scope={self.scope!r}; allowed: "
                             f"{', '.join(sorted(SCOPE_PACKAGES))}")
        object.__setattr__(self, "module", _check_config(self.name, "module", self.module,
                                                         self.kind))
        if self.baseline is not None:
            object.__setattr__(self, "baseline", _check_config(
                self.name, "baseline", self.baseline, self.kind))
        if not isinstance(self.inputs, Mapping):
            raise ValueError(f"benchmark case {self.name!r}: inputs must be a dict with a "
                             f"'generator', got {self.inputs!r}")
        generator = self.inputs.get("generator")
        if self.kind == "dataloader":
            self._check_dataloader(generator)
        elif self.workers != (0, 2):
            raise ValueError(f"benchmark case {self.name!r}: workers is only used with "
                             "kind='dataloader'")
        elif generator not in GENERATORS and not is_target(generator):
            raise ValueError(f"benchmark case {self.name!r}: inputs generator={generator!r}; "
                             f"allowed: {', '.join(GENERATORS)} or 'package.module:func'")
        object.__setattr__(self, "inputs", dict(self.inputs))
        if self.kind == "detector":
            if not isinstance(self.config, str) or not self.config:
                raise ValueError(f"benchmark case {self.name!r}: a detector case needs "
                                 f"config='path/or/mmdet::config.py', got {self.config!r}")
            if self.baseline_config is not None and self.baseline is None:
                raise ValueError(f"benchmark case {self.name!r}: baseline_config needs a "
                                 "baseline (cfg-options for it, {} for none)")
        elif self.config is not None or self.baseline_config is not None:
            raise ValueError(f"benchmark case {self.name!r}: config / baseline_config are "
                             "only used with kind='detector'")
        if not isinstance(self.train_method, str) or not self.train_method.isidentifier():
            raise ValueError(f"benchmark case {self.name!r}: train_method must be a method "
                             f"name, got {self.train_method!r}")
        if self.weight_sync is not None and not is_target(self.weight_sync):
            raise ValueError(f"benchmark case {self.name!r}: weight_sync must look like "
                             f"'package.module:func', got {self.weight_sync!r}")
        if self.equivalent and self.baseline is None:
            raise ValueError(f"benchmark case {self.name!r}: equivalent=True needs a baseline")
        if not self.baseline_label and self.baseline is not None:
            label = {"module": self.baseline.get("type"), "detector": "baseline",
                     "dataloader": (self.baseline.get("dataset") or {}).get("type")}[self.kind]
            object.__setattr__(self, "baseline_label", str(label).rpartition(":")[2])

    def _check_dataloader(self, generator: object) -> None:
        if not is_target(generator):
            raise ValueError(f"benchmark case {self.name!r}: a dataloader case needs inputs "
                             "generator='package.module:func' (it writes the data and returns "
                             f"the config placeholders), got {generator!r}")
        workers = self.workers
        if isinstance(workers, int) and not isinstance(workers, bool):
            workers = (workers,)
        if (not isinstance(workers, (tuple, list)) or not workers or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in workers)):
            raise ValueError(f"benchmark case {self.name!r}: workers must be worker counts "
                             f"(ints >= 0, e.g. (0, 2)), got {self.workers!r}")
        object.__setattr__(self, "workers", tuple(workers))
        for field_name in ("weight_sync", "equivalent", "needs_ops"):
            if getattr(self, field_name):
                raise ValueError(f"benchmark case {self.name!r}: {field_name} is not used "
                                 "with kind='dataloader'")

    @property
    def label(self) -> str:
        """How the timed module is shown: its type (module), the case name (detector) or
        the dataset type (dataloader)."""
        if self.kind == "detector":
            return self.name
        if self.kind == "dataloader":
            return str(self.module["dataset"]["type"]).rpartition(":")[2]
        return str(self.module["type"]).rpartition(":")[2]

    @property
    def generator(self) -> str:
        return self.inputs["generator"]

    @property
    def generator_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.inputs.items() if k != "generator"}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (what the JSON record stores)."""
        return {
            "name": self.name, "kind": self.kind, "scope": self.scope, "config": self.config,
            "baseline_config": self.baseline_config,
            "module": _jsonable(self.module), "baseline": _jsonable(self.baseline),
            "baseline_label": self.baseline_label, "inputs": _jsonable(self.inputs),
            "train_method": self.train_method, "weight_sync": self.weight_sync,
            "equivalent": self.equivalent, "needs_ops": self.needs_ops,
            "description": self.description, "provider": self.provider,
            "workers": list(self.workers),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def cases_from_dicts(records: Iterable[Mapping], generator: str, *, scope: str = "mmdet",
                     inputs_from_module: Iterable[str] = (),
                     train_method: str = "forward") -> list[BenchmarkCase]:
    """Cases from the plain dicts of a plugin's ``bench.py`` (``benchmark_cases()``).

    Each dict has ``name``, ``module``, ``baseline_module`` (optional), ``baseline`` (a
    label), ``inputs`` (generator parameters) and optionally ``scope``. ``generator`` names
    the input generator; ``inputs_from_module`` copies those keys of ``module`` (e.g.
    ``num_classes``) into the generator parameters; ``train_method`` is the default method
    timed with backward (a dict's own ``train_method`` wins).
    """
    cases = []
    for record in records:
        try:
            name, module, params = record["name"], dict(record["module"]), record["inputs"]
        except KeyError as exc:
            raise ValueError(f"benchmark dict {dict(record)!r} lacks key {exc}") from None
        params = dict(params)
        for key in inputs_from_module:
            if key in module:
                params.setdefault(key, module[key])
        cases.append(BenchmarkCase(
            name=name, module=module, baseline=record.get("baseline_module"),
            baseline_label=record.get("baseline", "") if record.get("baseline_module") else "",
            inputs={"generator": generator, **params}, scope=record.get("scope", scope),
            train_method=record.get("train_method", train_method),
            description=record.get("description", "")))
    return cases


def select(cases: Iterable[BenchmarkCase], patterns: Iterable[str]) -> list[BenchmarkCase]:
    """Cases whose name matches one of ``patterns`` (exact, or shell-style ``*``/``?``;
    ``all`` selects every case). Raises naming an unmatched pattern and the known names."""
    cases = list(cases)
    chosen: dict[str, BenchmarkCase] = {}
    for pattern in patterns:
        if pattern == "all":
            matched = cases
        else:
            matched = [c for c in cases if c.name == pattern] or [
                c for c in cases if fnmatch.fnmatchcase(c.name, pattern)]
        if not matched:
            import difflib

            names = [c.name for c in cases]
            close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"NAME {pattern!r} matches no benchmark case{hint}; declared "
                             f"cases: {', '.join(names) or 'none'}")
        for case in matched:
            chosen.setdefault(case.name, case)
    return list(chosen.values())
