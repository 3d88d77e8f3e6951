"""A template's declared hyperparameters -> an Optuna search space.

``int`` -> ``IntDistribution`` on its step grid; ``float`` -> ``FloatDistribution`` (log-uniform
where the hyperparameter declares ``log``); ``choice`` / ``bool`` -> ``CategoricalDistribution``;
lists and strings -> the ``search_choices`` the template declares for them (as text, since
Optuna's categorical values are scalars). The range searched is the hyperparameter's
``search_range``, else its minimum..maximum, or the ``NAME=LOW:HIGH`` the user gives.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cplugins.errors import CPluginsError
from cplugins.templates.model import Hyperparameter, Template, format_value

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


class TuneError(CPluginsError):
    """Bad input to ``cplugins tune``: reported in one line, nothing started."""


@dataclass(frozen=True)
class SearchSpace:
    """What a study searches: ``distributions`` by name, and the ``fixed`` (``--set``) values."""

    template: Template
    distributions: dict[str, BaseDistribution]
    fixed: dict[str, Any]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's hyperparameter values: ``fixed`` plus one sample per distribution."""
        values = dict(self.fixed)
        for name, distribution in self.distributions.items():
            values[name] = self.decode(name, suggest(trial, name, distribution))
        return values

    def decode(self, name: str, value: Any) -> Any:
        """An Optuna parameter value as the template's value (``"0.5,1"`` -> ``[0.5, 1.0]``)."""
        hp = self.template.hyperparameter(name)
        return hp.coerce(value) if hp.kind.endswith("_list") else value

    def values_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``fixed`` plus a finished trial's ``params``, decoded."""
        return {**self.fixed, **{k: self.decode(k, v) for k, v in params.items()}}

    def describe(self) -> dict[str, Any]:
        """JSON-friendly record (stored in the study; compared when a study is reused)."""
        from optuna.distributions import distribution_to_json

        return {"template": self.template.qualified_name,
                "distributions": {k: distribution_to_json(d)
                                  for k, d in sorted(self.distributions.items())},
                "fixed": {k: self.fixed[k] for k in sorted(self.fixed)}}


def suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    """Sample ``name`` from ``distribution`` with the public ``trial.suggest_*`` calls."""
    from optuna.distributions import FloatDistribution, IntDistribution

    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high,
                                 step=distribution.step, log=distribution.log)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high,
                                   step=distribution.step, log=distribution.log)
    return trial.suggest_categorical(name, distribution.choices)


def parse_search(items: Sequence[str]) -> dict[str, tuple[float, float] | None]:
    """``["lrate", "batch_size=2:8"]`` -> ``{"lrate": None, "batch_size": (2.0, 8.0)}``."""
    result: dict[str, tuple[float, float] | None] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not name or name in result:
            raise TuneError(f"--search {item!r}: " + ("give each name once" if name else
                                                       "must look like NAME or NAME=LOW:HIGH"))
        bounds = None
        if sep:
            low, colon, high = text.partition(":")
            try:
                bounds = (float(low), float(high))
            except ValueError:
                bounds = None
            if not colon or bounds is None or not all(map(math.isfinite, bounds)):
                raise TuneError(f"--search {item!r}: a range must look like {name}=LOW:HIGH "
                                "(two numbers)")
        result[name] = bounds
    return result


def _unknown(template: Template, name: str, option: str) -> TuneError:
    known = [hp.name for hp in template.hyperparameters]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return TuneError(f"{option} {name}: template {template.name} has no such hyperparameter"
                     f"{hint}; it has: {', '.join(known)}")


def build_space(template: Template, search: Sequence[str] | Mapping[str, Any] | None = None,
                fixed: Mapping[str, Any] | None = None) -> SearchSpace:
    """The search space of ``template``.

    Args:
        search: names to search (``NAME`` or ``NAME=LOW:HIGH``, or a mapping name -> range or
            ``None``); ``None``/empty: the hyperparameters the template marks ``tunable``,
            less the fixed ones.
        fixed: ``--set`` values (each checked on its own here; combinations per trial).

    Raises:
        TuneError: an unknown or unsearchable name, a name both searched and fixed, a bad
            range, an invalid fixed value, or nothing to search.
    """
    from optuna.distributions import CategoricalDistribution

    fixed = dict(fixed or {})
    converted: dict[str, Any] = {}
    for name, value in fixed.items():
        if name not in {hp.name for hp in template.hyperparameters}:
            raise _unknown(template, name, "--set")
        value, error = template.hyperparameter(name).validate(value)
        if error:
            raise TuneError(f"--set {error}")
        converted[name] = value
    ranges = dict(search) if isinstance(search, Mapping) else parse_search(search or [])
    if not ranges:
        ranges = {hp.name: None for hp in template.hyperparameters
                  if hp.tunable and hp.name not in fixed}
        if not ranges:
            raise TuneError(f"template {template.name} marks no hyperparameter tunable (or "
                            "--set fixes them all); name what to search with --search NAME")
    distributions: dict[str, BaseDistribution] = {}
    for name, bounds in ranges.items():
        if name not in {hp.name for hp in template.hyperparameters}:
            raise _unknown(template, name, "--search")
        if name in fixed:
            raise TuneError(f"--search {name} is also fixed with --set {name}={fixed[name]}; "
                            "search it or fix it, not both")
        hp = template.hyperparameter(name)
        if hp.kind in ("int", "float"):
            distributions[name] = _numeric(hp, bounds)
            continue
        if bounds is not None:
            raise TuneError(f"--search {name}={format_value(bounds[0])}:"
                            f"{format_value(bounds[1])}: a range is for int and float "
                            f"hyperparameters; {name} is a {hp.type_label}")
        if hp.kind == "bool":
            distributions[name] = CategoricalDistribution((False, True))
        elif hp.kind == "choice":
            distributions[name] = CategoricalDistribution(hp.choices)
        elif hp.search_choices:
            distributions[name] = CategoricalDistribution(tuple(
                _as_text(v) for v in hp.search_choices))
        else:
            raise TuneError(f"--search {name}: a {hp.type_label} is searched among the values "
                            f"the template declares (search_choices), and {template.name} "
                            f"declares none for {name}; fix it with --set {name}=VALUE")
    return SearchSpace(template, distributions, converted)


def _as_text(value: Any) -> str:
    """A list as ``'0.5,1,2'`` (empty: ``''``): what ``Hyperparameter.coerce`` reads back."""
    if isinstance(value, list):
        return ",".join(format_value(v) for v in value)
    return value


def _numeric(hp: Hyperparameter, bounds: tuple[float, float] | None) -> BaseDistribution:
    """Int/float distribution of ``hp`` over ``bounds`` (or its declared range), on its grid."""
    from optuna.distributions import FloatDistribution, IntDistribution

    option = f"--search {hp.name}"
    if bounds is None:
        bounds = hp.search_range or (hp.minimum, hp.maximum)
        if None in bounds:
            raise TuneError(f"{option}: {hp.name} has no upper or lower bound to search "
                            f"within; give one: --search {hp.name}=LOW:HIGH")
    else:
        for end in bounds:
            converted, error = hp.validate(end)
            if error:
                raise TuneError(f"{option}: range end {error}")
    low, high = bounds
    if not low < high:
        raise TuneError(f"{option}={format_value(low)}:{format_value(high)}: LOW must be below "
                        "HIGH")
    if hp.log and low <= 0:
        raise TuneError(f"{option}={format_value(low)}:{format_value(high)}: {hp.name} is "
                        "searched on a log scale, which needs LOW > 0")
    step = hp.step
    if step is not None:  # the grid starts at the declared minimum; Optuna's at low
        high = low + math.floor((high - low) / step + 1e-9) * step
    if hp.kind == "int":
        return IntDistribution(int(low), int(high), log=hp.log, step=int(step or 1))
    return FloatDistribution(float(low), float(high), log=hp.log,
                             step=None if step is None else float(step))
