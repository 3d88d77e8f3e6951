"""Turn mmengine's "X is not in the registry" into an answer: close names, scopes, plugins.

:func:`arm` puts the explanation into mmengine's own ``Registry.build``, so a stock
``Runner.from_cfg`` or mmdet's ``tools/train.py`` explains too, once a cplugins plugin (or
cplugins' manager) was imported. The error stays a ``KeyError`` (:class:`UnknownTypeError`).
"""
from __future__ import annotations

import difflib
import functools
import importlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from cplugins import import_hooks, versions
from cplugins.errors import UnknownTypeError
from cplugins.manager import ENV_LOAD_PLUGINS, PluginRecord, get_manager
from cplugins.spec import REGISTRY_ATTRIBUTES, SCOPE_PACKAGES

#: the plugin distributions published with cplugins, by the ``type`` names they provide: a
#: config naming one of them that is not installed is told which distribution to install
#: (tests/test_guest_missing.py keeps it equal to what this repository's plugins declare)
KNOWN_PLUGINS: dict[str, tuple[str, ...]] = {
    "cplugins-augfpn": ("AugFPN", "SoftRoIExtractor", "AllLevelRoIExtractor", "CSRoIHead",
                        "CSCascadeRoIHead", "CSTwoStageDetector", "CSSingleStageDetector"),
    "cplugins-inception": ("InceptionV4", "BNInception"),
    "cplugins-embednorm": ("EmbedNormClsHead", "EmbedNormClassifier"),
    "cplugins-f1loss": ("SoftF1Loss",),
    "cplugins-deeplake": ("DeepLakeDetDataset", "DeepLakeClsDataset", "DeepLakeSegDataset",
                          "LoadImageFromDeepLake", "LoadAnnotationsFromDeepLake"),
}
#: a JSON file ``{"distribution": ["Type", ...], ...}`` of more known plugins (an
#: organisation's own), read in addition to :data:`KNOWN_PLUGINS`
ENV_INDEX = "CPLUGINS_INDEX"

_MISSING = re.compile(
    r"(?P<name>[\w.]+) is not in the (?:(?P<scope>\w+)::)?(?P<registry>\w+) registry")


def _find_registry(scope: str | None, name: str):
    attr = REGISTRY_ATTRIBUTES.get(name)
    package = SCOPE_PACKAGES.get(scope or "mmengine")
    if attr is None or package is None:
        return None
    try:
        return getattr(importlib.import_module(f"{package}.registry"), attr)
    except (ImportError, AttributeError):
        return None


def _default_scope() -> str:
    from mmengine.registry import DefaultScope

    current = DefaultScope.get_current_instance()
    return current.scope_name if current is not None else "none"


def _searched(registry) -> list[str]:
    chain = []
    while registry is not None:
        chain.append(f"{registry.scope}::{registry.name}")
        registry = registry.parent
    return chain


def _plugin_line(short: str, record: PluginRecord, searched: list[str]) -> str | None:
    about = f"{short} is provided by plugin {record.name!r} ({record.label}), which"
    if record.status == "failed":
        return f"{about} failed to load: {record.error}"
    if record.status == "incompatible":
        return f"{about} is not loaded: {record.error}"
    if record.status == "discovered":
        return (f"{about} is installed but not imported: add custom_imports=dict(imports="
                f"['{record.package}']) (or ['cplugins.all']) to the config.")
    wrong = [r for r in record.registrations
             if r.spec.name == short and r.status == "registered" and str(r.registry) not in
             searched]
    if wrong:
        places = ", ".join(str(r.registry) for r in wrong)
        return (f"{about} registers it in {places}: use it from that scope, or prefix the "
                f"type with the scope, e.g. type='{wrong[0].registry.scope}.{short}'.")
    return None


def known_plugins() -> dict[str, tuple[str, ...]]:
    """:data:`KNOWN_PLUGINS` plus the index file named by ``CPLUGINS_INDEX`` (if set)."""
    index = dict(KNOWN_PLUGINS)
    path = os.environ.get(ENV_INDEX)
    if path:
        try:
            with open(path) as f:
                extra = json.load(f)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{ENV_INDEX}={path}: cannot read a JSON index of plugins "
                             f"({type(exc).__name__}: {exc})") from None
        if not isinstance(extra, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v)
                for v in extra.values()):
            raise ValueError(f"{ENV_INDEX}={path}: must map distribution names to lists of "
                             'type names, e.g. {"my-neck": ["MyNeck"]}')
        index.update({dist: tuple(names) for dist, names in extra.items()})
    return index


def install_hints(short: str, loaded: set[str]) -> list[str]:
    """Which distribution provides ``short`` and the pip line: from the plugin locks this
    process read (a checkpoint's, a saved config's, :func:`cplugins.lock.remembered_locks`),
    with the version they recorded, else from the index of known plugins. ``loaded``: the
    canonical names of the distributions whose plugins were discovered."""
    from cplugins.lock import remembered_locks

    lines = []
    for source, lock in remembered_locks():
        for entry in lock:
            if short not in entry.get("modules", []):
                continue
            dist, version = entry["distribution"], entry["version"]
            installed = versions.installed_version(dist)
            state = ("is not installed" if installed is None else
                     f"is installed at {installed}" if installed != version else
                     "is installed at that version but not loaded")
            lines.append(f"{short} was provided by {dist} {version} when {source} was made "
                         f"(its plugin lock); {dist} {state}: pip install '{dist}=={version}'")
    if lines:
        return lines
    for dist, names in known_plugins().items():
        if short not in names:
            continue
        installed = versions.installed_version(dist)
        if installed is None:
            lines.append(f"{short} is provided by the plugin distribution {dist}, which is not "
                         f"installed: pip install {dist}")
        elif _canonical(dist) not in loaded and os.environ.get(ENV_LOAD_PLUGINS) is not None:
            lines.append(f"{short} is provided by {dist} {installed}, which is installed but "
                         f"left out by {ENV_LOAD_PLUGINS}={os.environ[ENV_LOAD_PLUGINS]!r}: "
                         f"add {dist} to it")
    return lines


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def explain_unknown_type(type_name: str, scope: str | None, registry_name: str) -> str:
    """A message for an unknown ``type``: default scope, scopes searched, the closest names,
    and the installed plugins that provide the name or failed before saying what they
    provide."""
    from cplugins.registries import visible_names

    prefix, _, short = type_name.rpartition(".")
    label = f"{scope}::{registry_name}" if scope else registry_name
    lines = [f"type {type_name!r} is not in the {label} registry."]
    registry = _find_registry(prefix if prefix in SCOPE_PACKAGES else scope, registry_name)
    searched = _searched(registry) if registry is not None else []
    if registry is not None:
        lines.append(f"Default scope: {_default_scope()}; registries searched: "
                     f"{', '.join(searched)}.")
        registry.import_from_location()
        close = difflib.get_close_matches(short, sorted(visible_names(registry)), n=5, cutoff=0.5)
        if close:
            lines.append(f"Closest registered names: {', '.join(close)}.")
    manager = get_manager()
    manager.discover()
    for record in manager.providers_of(short):
        line = _plugin_line(short, record, searched)
        if line:
            lines.append(line)
    unknown = [r for r in manager.records.values() if r.status == "failed" and not r.specs]
    if unknown:
        lines.append("Plugins that failed before declaring their modules (one may provide "
                     f"{short}): " + "; ".join(f"{r.name} ({r.label}): {r.error}"
                                               for r in unknown))
    plugins = [f"{r.name} ({r.label}, {r.status})" for r in manager.records.values()
               if not r.builtin]
    if not manager.providers_of(short):
        lines += install_hints(short, {_canonical(r.distribution)
                                       for r in manager.records.values()})
    lines.append(f"Installed plugins: {', '.join(plugins) or 'none'}.")
    return "\n".join(lines)


def explained(exc: KeyError) -> UnknownTypeError | None:
    """``exc`` as an explained :class:`UnknownTypeError`, or None if it is another KeyError."""
    if isinstance(exc, UnknownTypeError):
        return None
    match = _MISSING.search(str(exc.args[0]) if exc.args else "")
    if match is None:
        return None
    try:
        message = explain_unknown_type(match["name"], match["scope"], match["registry"])
    except Exception:  # explaining must never hide the original error
        return None
    return UnknownTypeError(message)


@contextmanager
def explain_unknown_types() -> Iterator[None]:
    """Re-raise mmengine's unknown-type KeyError as :class:`UnknownTypeError`, explained."""
    try:
        yield
    except KeyError as exc:
        error = explained(exc)
        if error is None:
            raise
        raise error from exc


# ----------------------------------------------------------------------------- mmdet 2 arguments
#: (transform or '*', mmdet 2 argument) -> what to give mmdet 3 instead
MMDET2_ARGUMENTS: dict[tuple[str, str], str] = {
    ("Resize", "img_scale"): "use scale",
    ("Resize", "multiscale_mode"): "use RandomResize(scale=[...]) for 'range', "
                                   "RandomChoiceResize(scales=[...]) for 'value'",
    ("Resize", "ratio_range"): "use RandomResize(scale=..., ratio_range=...)",
    ("Resize", "bbox_clip_border"): "use clip_object_border",
    ("RandomFlip", "flip_ratio"): "use prob",
    ("MultiScaleFlipAug", "img_scale"): "use scales (mmcv 2's MultiScaleFlipAug), or "
                                        "TestTimeAug with tta_model as mmdet 3 does",
    ("MultiScaleFlipAug", "flip"): "use allow_flip",
    ("*", "img_fill_val"): "use img_border_value",
    ("*", "fill_val"): "use img_border_value",
    ("*", "random_negative_prob"): "use reversal_prob",
    ("*", "max_rotate_angle"): "use max_mag (degrees)",
    ("*", "max_translate_offset"): "use max_mag, a fraction of the image width (TranslateX) "
                                   "or height (TranslateY), not pixels: 250 px of a 2048 px "
                                   "wide image is max_mag=0.122",
    ("*", "max_shear_magnitude"): "use max_mag, an angle in degrees, not a shear factor: "
                                  "factor 0.3 is max_mag=16.7 (atan)",
    ("ShearX", "direction"): "use ShearX (horizontal) or ShearY (vertical)",
    ("TranslateX", "direction"): "use TranslateX (horizontal) or TranslateY (vertical)",
    ("Rotate", "scale"): "drop it: mmdet 3's Rotate does not scale (RandomAffine does)",
    ("Rotate", "center"): "drop it: mmdet 3 rotates about the image centre",
    ("TranslateX", "min_size"): "drop it and add FilterAnnotations(min_gt_bbox_wh=(s, s)) "
                                "after the transform",
    ("*", "file_client_args"): "use backend_args",
    ("*", "to_rgb"): "use model.data_preprocessor.bgr_to_rgb",
}


_UNEXPECTED = re.compile(r"(?:class `(?P<wrapped>\w+)` in [\w/.]+\.py: |(?P<cls>\w+)\.)"
                         r"__init__\(\) got an unexpected keyword argument '(?P<arg>\w+)'")
_EXPLAINED = "(an mmdet 2 argument)"


def explain_type_error(exc: TypeError) -> str | None:
    """mmengine's ``class `Resize` in ...: __init__() got an unexpected keyword argument
    'img_scale'`` with what mmdet 3 takes instead appended (one line); None when there is
    nothing to add (another argument, or explained already). ``cplugins.diagnose`` applies
    it in ``Registry.build``, for runners other than ``tools/train.py``."""
    message = str(exc)
    match = _UNEXPECTED.search(message)
    if match is None or _EXPLAINED in message:
        return None
    short, argument = match["cls"] or match["wrapped"], match["arg"]
    hint = MMDET2_ARGUMENTS.get((short, argument)) or MMDET2_ARGUMENTS.get(("*", argument))
    if hint is None:
        return None
    return f"{message}; {short} takes no {argument!r} in mmdet 3 {_EXPLAINED}: {hint}"


def _explain_registry_build(module) -> None:
    registry_class = module.Registry
    if getattr(registry_class.build, "cplugins_explained", False):
        return
    original = registry_class.build

    @functools.wraps(original)
    def build(self, cfg, *args, **kwargs):
        try:
            with explain_unknown_types():
                return original(self, cfg, *args, **kwargs)
        except TypeError as exc:  # an mmdet 2 argument: name what mmdet 3 takes
            message = explain_type_error(exc)
            if message is None:
                raise
            raise TypeError(message) from exc

    build.cplugins_explained = True
    registry_class.build = build


def arm() -> None:
    """Explain unknown types in every ``Registry.build`` from when mmengine is imported."""
    import_hooks.when_imported("mmengine.registry.registry", _explain_registry_build)
