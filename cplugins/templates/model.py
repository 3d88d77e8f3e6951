"""The template model: typed hyperparameters, their validation, and the template record.

Light on purpose (standard library only): ``cplugins templates`` lists and shows templates
without importing torch, numpy or mmengine. Rendering lives in :mod:`cplugins.templates.rendering`.
"""
from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cplugins.errors import TemplateError

#: tasks a template can have, and the OpenMMLab scope that trains them
TASKS: dict[str, str] = {
    "detection": "mmdet",
    "classification": "mmpretrain",
    "segmentation": "mmseg",
}
#: hyperparameter kinds
KINDS: tuple[str, ...] = ("int", "float", "bool", "choice", "str", "int_list", "float_list")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class TemplateValidationError(TemplateError, ValueError):
    """Hyperparameters are invalid; ``errors`` holds one message per problem."""

    def __init__(self, template: str, errors: Sequence[str]):
        self.template = template
        self.errors = list(errors)
        count = f"{len(self.errors)} invalid hyperparameter" + ("s" if len(self.errors) > 1 else "")
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"template {template}: {count}; nothing was rendered:\n{lines}")


def format_value(value: Any) -> str:
    """Numbers without noise (``1e-05``, ``0.5``, ``3``), strings quoted, ``true``/``false``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values (``np.int64(4)`` -> ``4``); others as given."""
    if type(value).__module__.split(".")[0] == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value


@dataclass(frozen=True)
class Hyperparameter:
    """One typed, ranged hyperparameter of a template.

    Args:
        name: identifier used with ``--set name=value``.
        kind: one of :data:`KINDS` (``int_list`` / ``float_list`` are lists of numbers).
        default: the value used when none is given (``None`` only with ``required``).
        description: one line for ``cplugins templates show``.
        minimum, maximum, step: bounds (inclusive) and grid of numbers (of each list item);
            the grid starts at ``minimum`` (or 0).
        choices: allowed values of a ``choice``.
        min_items, max_items: allowed list lengths; with ``min_items=0`` the list may be empty,
            written ``''``, ``[]`` or ``0``.
        required: the value must be given (no default).
        log: values spread over orders of magnitude (learning rates, weight decays): a search
            samples them log-uniformly. Declared, never guessed from the name.
        tunable: in the default search set of ``cplugins tune``.
        search_range: ``(low, high)`` a search covers by default, within minimum..maximum
            (needed where the allowed range starts at 0 but a log-scale search cannot).
        search_choices: values a search picks among for a list or string hyperparameter.
    """

    name: str
    kind: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    min_items: int = 1
    max_items: int | None = None
    required: bool = False
    log: bool = False
    tunable: bool = False
    search_range: tuple[float, float] | None = None
    search_choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise TemplateError(f"hyperparameter name {self.name!r} must be an identifier")
        if self.kind not in KINDS:
            raise TemplateError(f"hyperparameter {self.name}: kind {self.kind!r} is not one of "
                                f"{', '.join(KINDS)}")
        if self.kind == "choice":
            if not self.choices:
                raise TemplateError(f"hyperparameter {self.name}: a choice needs choices")
            object.__setattr__(self, "choices", tuple(self.choices))
        elif self.choices is not None:
            raise TemplateError(f"hyperparameter {self.name}: choices are for kind 'choice'")
        if self.required:
            if self.default is not None:
                raise TemplateError(f"hyperparameter {self.name}: required means no default")
            return
        problems = self.check(self.default)
        if problems:
            raise TemplateError(f"hyperparameter {self.name}: default "
                                f"{format_value(self.default)} is invalid: {problems}")
        self._check_search_declaration()

    def _check_search_declaration(self) -> None:
        """``log``, ``search_range``, ``search_choices`` and ``tunable`` fit this kind."""
        numeric = self.kind in ("int", "float")
        if (self.log or self.search_range is not None) and not numeric:
            raise TemplateError(f"hyperparameter {self.name}: log and search_range are for "
                                "kinds int and float")
        if self.search_choices is not None:
            if self.kind not in ("str", "int_list", "float_list"):
                raise TemplateError(f"hyperparameter {self.name}: search_choices are for lists "
                                    "and strings (a choice searches its choices)")
            converted = []
            for value in self.search_choices:
                value, error = self.validate(value)
                if error:
                    raise TemplateError(f"hyperparameter {self.name}: search choice {error}")
                converted.append(value)
            object.__setattr__(self, "search_choices", tuple(converted))
        if self.log and self.step is not None and (self.kind == "float" or self.step != 1):
            raise TemplateError(f"hyperparameter {self.name}: a log-scale search has no step")
        if self.search_range is not None:
            low, high = self.search_range
            for end in (low, high):
                reason = self.check(end)
                if reason:
                    raise TemplateError(f"hyperparameter {self.name}: search_range end "
                                        f"{format_value(end)} is {reason}")
            if not low < high:
                raise TemplateError(f"hyperparameter {self.name}: search_range {low}..{high} "
                                    "must have low < high")
            object.__setattr__(self, "search_range", (low, high))
        low = self.search_range[0] if self.search_range else self.minimum
        if self.log and (low is None or low <= 0):
            raise TemplateError(f"hyperparameter {self.name}: a log-scale search needs a "
                                "lower bound > 0 (minimum or search_range)")
        if self.tunable and self.kind == "str" and not self.search_choices:
            raise TemplateError(f"hyperparameter {self.name}: a tunable string needs "
                                "search_choices")

    # -- description ---------------------------------------------------------------------
    @property
    def type_label(self) -> str:
        return {"int_list": "list[int]", "float_list": "list[float]"}.get(self.kind, self.kind)

    def allowed(self) -> str:
        """What values are allowed, in words (used in every error message)."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(format_value(c) for c in self.choices)
        if self.kind == "str":
            return "a string" + (" (required)" if self.required else "")
        noun = "an integer" if self.kind in ("int", "int_list") else "a number"
        bounds = self.range_text()
        text = f"{noun} {bounds}" if bounds else noun
        if self.kind.endswith("_list"):
            least = max(1, self.min_items)
            count = (f"{least}" if self.max_items == least else
                     f"{least} to {self.max_items}" if self.max_items else f"at least {least}")
            text = (f"one value, {text}" if count == "1" else
                    f"a list of {count} values, each {text}")
            if self.min_items == 0:
                text = f"empty (0 or ''), or {text}"
        return text

    def range_text(self) -> str:
        """``from 1 to 32``, ``>= 0``, ``from 32 to 1024 in steps of 16``, or ``''``."""
        if self.minimum is not None and self.maximum is not None:
            text = f"from {format_value(self.minimum)} to {format_value(self.maximum)}"
        elif self.minimum is not None:
            text = f">= {format_value(self.minimum)}"
        elif self.maximum is not None:
            text = f"<= {format_value(self.maximum)}"
        else:
            text = ""
        if self.step is not None:
            text += f" in steps of {format_value(self.step)}"
        return text.strip()

    # -- parsing and checking ------------------------------------------------------------
    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (typed, or a string from the command line) to this kind.

        Raises ``ValueError`` with a short reason when it has the wrong type.
        """
        kind = self.kind
        value = _plain(value)
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError("not a string")
            return value
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if _is_int(value) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError("not a boolean")
        if kind == "choice":
            return self._coerce_choice(value)
        if kind in ("int", "float"):
            return self._coerce_number(value, kind)
        items = _split_list(value)
        item_kind = kind[: -len("_list")]
        numbers = [self._coerce_number(v, item_kind) for v in items]
        if self.min_items == 0 and numbers == [0]:  # a list that may be empty: 0 means empty
            return []
        return numbers

    def _coerce_choice(self, value: Any) -> Any:
        for choice in self.choices:
            if type(choice) is type(value) and choice == value:
                return choice
        text = str(value).strip()
        for choice in self.choices:
            if str(choice) == text:
                return choice
        folded = [c for c in self.choices if str(c).lower() == text.lower()]
        if len(folded) == 1:
            return folded[0]
        raise ValueError("unknown choice")

    @staticmethod
    def _coerce_number(value: Any, kind: str) -> int | float:
        """A number of ``kind``; an integral float (``4.0``, ``"4.0"``, ``"1e3"``) is an int."""
        noun = "an integer" if kind == "int" else "a number"
        if isinstance(value, str):
            text = value.strip()
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"not {noun}") from None
        if not _is_number(value):
            raise ValueError(f"not {noun}")
        if _is_int(value):
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError("not a finite number")
        if kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError("not an integer")
                value = int(value)
            return value
        try:
            return float(value)
        except OverflowError:  # an int beyond the float range
            raise ValueError("not a finite number") from None

    def check(self, value: Any) -> str:
        """'' when ``value`` (already of this kind) satisfies the bounds, else the reason."""
        if self.kind in ("int", "float"):
            return self._check_number(value)
        if self.kind.endswith("_list"):
            if not isinstance(value, list):
                return "not a list"
            if len(value) < self.min_items or (self.max_items and len(value) > self.max_items):
                return f"{len(value)} values"
            for item in value:
                reason = self._check_number(item)
                if reason:
                    return f"item {format_value(item)} is {reason}"
            return ""
        if self.kind == "choice" and value not in self.choices:
            return "unknown choice"
        return ""

    def _check_number(self, value: int | float) -> str:
        if self.minimum is not None and value < self.minimum:
            return "below the minimum"
        if self.maximum is not None and value > self.maximum:
            return "above the maximum"
        if self.step is not None:
            base = self.minimum or 0
            k = (value - base) / self.step
            if abs(k - round(k)) > 1e-9:
                lower = base + math.floor(k) * self.step
                near = [format_value(_tidy(lower)), format_value(_tidy(lower + self.step))]
                return f"off the step grid (nearest: {' or '.join(near)})"
        return ""

    def validate(self, value: Any) -> tuple[Any, str]:
        """(converted value, '') or (None, full error message naming this hyperparameter)."""
        try:
            converted = self.coerce(value)
        except ValueError as exc:
            return None, f"{self.name}={format_value(value)}: {exc}; allowed: {self.allowed()}"
        reason = self.check(converted)
        if reason:  # show the value as understood (``99``, not the command line's ``'99'``)
            return None, (f"{self.name}={format_value(converted)}: {reason}; allowed: "
                          f"{self.allowed()}")
        return converted, ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (``cplugins templates show --json``)."""
        return {"name": self.name, "type": self.type_label, "default": self.default,
                "minimum": self.minimum, "maximum": self.maximum, "step": self.step,
                "choices": list(self.choices) if self.choices else None,
                "required": self.required, "allowed": self.allowed(),
                "log": self.log, "tunable": self.tunable,
                "search_range": list(self.search_range) if self.search_range else None,
                "search_choices": (list(self.search_choices) if self.search_choices is not None
                                   else None),
                "description": self.description}


def _tidy(number: float) -> int | float:
    rounded = round(number, 10)
    return int(rounded) if float(rounded).is_integer() else rounded


def _split_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        return [p for p in re.split(r"[,\s]+", text) if p]
    if _is_number(value):
        return [value]
    raise ValueError("not a list of numbers")


#: a cross-field check: validated values -> error messages (empty when consistent)
Check = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Template:
    """A named, pre-composed config plus typed hyperparameters.

    Args:
        name: e.g. ``"MMDetection_YOLOX"`` (unique within its task).
        task: ``detection``, ``classification`` or ``segmentation``.
        base: the config it starts from: ``"mmdet::..."``, ``"mmpretrain::..."``,
            ``"mmseg::..."``, a path relative to the cplugins repository (``"configs/..."``) or
            an absolute path; ``""`` for barebones templates (the user's file is the base).
        hyperparameters: the typed hyperparameters.
        render: ``"package.module:function"``; imported only when rendering. The function is
            called as ``function(ctx)`` with a :class:`cplugins.templates.rendering.RenderContext`
            and edits ``ctx.cfg`` in place.
        description: one line for the listing.
        plugins: import packages the rendered config needs (its ``custom_imports``).
        checks: cross-field checks run after every hyperparameter is valid on its own.
        notes: longer text for ``cplugins templates show``.
    """

    name: str
    task: str
    base: str
    hyperparameters: tuple[Hyperparameter, ...]
    render: str
    description: str
    plugins: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default=(), compare=False)
    notes: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise TemplateError(f"template name {self.name!r} must be an identifier")
        if self.task not in TASKS:
            raise TemplateError(f"template {self.name}: task {self.task!r}; allowed: "
                                f"{', '.join(TASKS)}")
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", self.render):
            raise TemplateError(f"template {self.name}: render {self.render!r} must look like "
                                "'package.module:function'")
        object.__setattr__(self, "hyperparameters", tuple(self.hyperparameters))
        object.__setattr__(self, "plugins", tuple(self.plugins))
        object.__setattr__(self, "checks", tuple(self.checks))
        names = [h.name for h in self.hyperparameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TemplateError(f"template {self.name}: duplicate hyperparameters "
                                f"{', '.join(duplicates)}")

    @property
    def qualified_name(self) -> str:
        return f"{self.task}/{self.name}"

    @property
    def scope(self) -> str:
        return TASKS[self.task]

    def hyperparameter(self, name: str) -> Hyperparameter:
        for hp in self.hyperparameters:
            if hp.name == name:
                return hp
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {hp.name: hp.default for hp in self.hyperparameters}

    def validate(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every hyperparameter's value (given or default), converted and checked.

        Raises :class:`TemplateValidationError` listing every problem at once: unknown names
        (with the closest known name), wrong types, out of range, off the step grid, unknown
        choices, missing required values and inconsistent combinations.
        """
        if values is not None and not isinstance(values, Mapping):
            raise TemplateError(f"template {self.name}: hyperparameter values must be a mapping "
                                f"of names to values, got {type(values).__name__}")
        values = dict(values or {})
        known = [hp.name for hp in self.hyperparameters]
        errors: list[str] = []
        for name in values:
            if not isinstance(name, str):
                errors.append(f"hyperparameter name {name!r} ({type(name).__name__}): names are "
                              f"strings; {self.name} accepts: {', '.join(known)}")
            elif name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(f"unknown hyperparameter {name!r}{hint}; {self.name} accepts: "
                              f"{', '.join(known)}")
        result: dict[str, Any] = {}
        for hp in self.hyperparameters:
            if hp.name not in values:
                if hp.required:
                    errors.append(f"{hp.name} is required; allowed: {hp.allowed()}")
                else:
                    result[hp.name] = hp.default
                continue
            converted, error = hp.validate(values[hp.name])
            if error:
                errors.append(error)
            else:
                result[hp.name] = converted
        if not errors:
            for check in self.checks:
                errors.extend(check(result))
        if errors:
            raise TemplateValidationError(self.name, errors)
        return result


# --- reusable cross-field checks --------------------------------------------------------
def check_order(lower: str, upper: str, zero_disables: bool = False) -> Check:
    """``values[lower] <= values[upper]``; with ``zero_disables`` both 0 or both > 0."""

    def check(values: Mapping[str, Any]) -> list[str]:
        if lower not in values or upper not in values:
            return []
        lo, hi = values[lower], values[upper]
        if zero_disables and (lo == 0) != (hi == 0):
            return [f"{lower}={format_value(lo)} and {upper}={format_value(hi)}: set both to 0 "
                    f"(off) or both above 0"]
        if lo > hi:
            return [f"{lower}={format_value(lo)} > {upper}={format_value(hi)}: {lower} must be "
                    f"<= {upper}"]
        return []

    return check


def check_image_size_aspect(values: Mapping[str, Any]) -> list[str]:
    """Two ``image_size`` values are an exact size, which needs ``keep_aspect_ratio=false``."""
    size, keep = values.get("image_size"), values.get("keep_aspect_ratio")
    if isinstance(size, list) and len(size) == 2 and keep:
        return [f"image_size={format_value(size)} with keep_aspect_ratio=true: two values are "
                "an exact (height, width), which needs keep_aspect_ratio=false; give one value "
                "(the shorter side) to keep the aspect ratio"]
    return []


def check_one_start(first: str, second: str, neutral: Sequence[Any] = ("", "none")) -> Check:
    """At most one of two ways to give the starting weights."""

    def chosen(value: Any) -> bool:
        text = value.strip().lower() if isinstance(value, str) else value
        return value is not None and text not in neutral

    def check(values: Mapping[str, Any]) -> list[str]:
        a, b = values.get(first), values.get(second)
        if chosen(a) and chosen(b):
            return [f"{first}={format_value(a)} and {second}={format_value(b)} both choose the "
                    f"starting weights; give only one of them"]
        return []

    return check


def parse_assignments(items: Sequence[str], option: str = "--set") -> dict[str, str]:
    """``["a=1", "b=x,y"]`` -> ``{"a": "1", "b": "x,y"}`` (values stay strings).

    A name given twice is an error (the last one would silently win otherwise).
    """
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise TemplateError(f"{option} {item!r}: must look like NAME=VALUE")
        if name in result:
            raise TemplateError(f"{option}: {name} is given twice ({name}={result[name]} and "
                                f"{name}={value}); give each hyperparameter once")
        result[name] = value
    return result
