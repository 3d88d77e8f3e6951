"""Property tests over every built-in template's declared hyperparameters (Hypothesis).

* any value inside the declared ranges renders, and the rendered file loads (or, where two
  values contradict each other, exactly the cross-field errors are reported);
* any value outside is refused, naming the hyperparameter and what is allowed, and nothing is
  written;
* the same value typed as a Python number, a numpy scalar, an integral float or a string is the
  same value; a name given twice is refused.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cplugins.cli import main as cplugins_main
from cplugins.templates import Hyperparameter, Template, TemplateError, TemplateValidationError
from cplugins.templates.catalog import load_catalog
from cplugins.templates.experiments import ENV_RUNS_ROOT
from cplugins.templates.model import format_value, parse_assignments
from cplugins.templates.rendering import render_text

#: templates with a model of their own (barebones ones take a file, tested elsewhere)
MODELED: list[Template] = [e.template for e in load_catalog().entries if e.template.base]
IDS = [t.qualified_name for t in MODELED]
#: string hyperparameters (starting weights): spellings every template accepts
WEIGHTS = ["", "none", "None", "https://example.com/weights.pth"]
SETTINGS = settings(max_examples=3, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def no_recorded_runs(tmp_path_factory):
    """continue_from_eid looks for runs in an empty folder."""
    previous = os.environ.get(ENV_RUNS_ROOT)
    os.environ[ENV_RUNS_ROOT] = str(tmp_path_factory.mktemp("runs"))
    yield
    if previous is None:
        del os.environ[ENV_RUNS_ROOT]
    else:
        os.environ[ENV_RUNS_ROOT] = previous


# --- strategies ---------------------------------------------------------------------------
def _number(hp: Hyperparameter, kind: str) -> st.SearchStrategy:
    lo, hi = hp.minimum, hp.maximum
    if hp.step is not None:
        base = lo or 0
        top = math.floor((hi - base) / hp.step + 1e-9)
        grid = st.integers(0, top).map(lambda k: base + k * hp.step)
        return grid.map(int) if kind == "int" else grid.map(float)
    if kind == "int":
        return st.integers(int(lo), int(hi))
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def valid(hp: Hyperparameter) -> st.SearchStrategy:
    """Values inside what ``hp`` declares."""
    if hp.kind == "bool":
        return st.booleans()
    if hp.kind == "choice":
        return st.sampled_from(hp.choices)
    if hp.name == "continue_from_eid":  # no run recorded here: only "no run" is valid
        return st.sampled_from(["", "none"])
    if hp.kind == "str":
        return st.sampled_from(WEIGHTS)
    if hp.kind.endswith("_list"):
        return st.lists(_number(hp, hp.kind[:-5]), min_size=hp.min_items,
                        max_size=hp.max_items)
    return _number(hp, hp.kind)


def invalid(hp: Hyperparameter) -> st.SearchStrategy:
    """Command-line texts outside what ``hp`` allows."""
    if hp.kind == "bool":
        return st.sampled_from(["maybe", "2", "yes please"])
    if hp.kind == "choice":
        return st.text("xyz_", min_size=1, max_size=5).filter(
            lambda t: t.lower() not in {str(c).lower() for c in hp.choices})
    if hp.name == "continue_from_eid":
        return st.sampled_from(["20260101_000000-abcd", "no_such_run"])
    if hp.kind == "str":
        return st.sampled_from(["/nonexistent/weights.pth", "no_such_file.pth"])
    lo, hi = hp.minimum, hp.maximum
    bad_numbers = [st.sampled_from(["abc", "inf", "nan", "1e999"]),
                   st.floats(hi, 1e300, exclude_min=True, allow_nan=False).map(repr),
                   st.floats(-1e300, lo, exclude_max=True, allow_nan=False).filter(
                       lambda x: hp.min_items > 0 or x != 0).map(repr)]  # 0: an empty list
    if hp.kind in ("int", "int_list"):
        bad_numbers.append(st.sampled_from(["2.5", "0.1"]))
    if hp.step is not None:
        bad_numbers.append(st.integers(0, int((hi - (lo or 0)) // hp.step) - 1).map(
            lambda k: str((lo or 0) + k * hp.step + hp.step / 2)))
    numbers = st.one_of(bad_numbers)
    if hp.kind.endswith("_list"):
        too_many = st.just(",".join([str(int(lo))] * (hp.max_items + 1)))
        return st.one_of(numbers, too_many)
    return numbers


def values_for(template: Template) -> st.SearchStrategy:
    """Some hyperparameters of ``template``, each inside its declared range."""
    return st.fixed_dictionaries({}, optional={hp.name: valid(hp)
                                               for hp in template.hyperparameters})


def as_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    return format_value(value).strip("'") if not isinstance(value, float) else repr(value)


# --- every numeric hyperparameter is bounded --------------------------------------------------
def test_every_numeric_hyperparameter_has_both_bounds():
    unbounded = [f"{t.qualified_name}.{hp.name}" for t in MODELED for hp in t.hyperparameters
                 if hp.kind in ("int", "float", "int_list", "float_list")
                 and (hp.minimum is None or hp.maximum is None)]
    assert not unbounded


# --- in range: validates, renders and loads ---------------------------------------------------
def _converted_and_contradictions(template: Template, values: dict) -> tuple[dict, list[str]]:
    """Every value converted (each must be valid alone) and the cross-field errors."""
    converted = dict(template.defaults())
    for name, value in values.items():
        converted[name], error = template.hyperparameter(name).validate(value)
        assert not error, error
    return converted, [e for check in template.checks for e in check(converted)]


@pytest.mark.parametrize("template", MODELED, ids=IDS)
@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data())
def test_values_in_range_validate(template, data):
    """Cheap, many examples: valid, or exactly the contradictions between two values."""
    values = data.draw(values_for(template))
    converted, cross = _converted_and_contradictions(template, values)
    if cross:
        with pytest.raises(TemplateValidationError) as info:
            template.validate(values)
        assert info.value.errors == cross
    else:
        assert template.validate(values) == converted


@pytest.mark.parametrize("template", MODELED, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_values_in_range_render_and_load(template, data):
    from mmengine.config import Config

    values = data.draw(values_for(template))
    converted, cross = _converted_and_contradictions(template, values)
    event("contradiction" if cross else "rendered")
    if cross:  # a contradiction between two valid values: exactly that is reported
        with pytest.raises(TemplateValidationError) as info:
            render_text(template, values)
        assert info.value.errors == cross
        return
    cfg = Config.fromstring(render_text(template, values), ".py")
    assert cfg.template["hyperparameters"] == converted
    lr = cfg.optim_wrapper.optimizer.lr
    assert math.isfinite(lr)
    if "per_item_lrate" in converted:
        assert math.isclose(lr, converted["batch_size"] * converted["per_item_lrate"])


# --- out of range: refused with name and what is allowed, nothing written ---------------------
def _render_cli(name: str, sets: list[str]) -> tuple[int, str, bool]:
    """``cplugins render NAME --set ... -o FILE``: exit status, stderr, whether FILE exists."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rendered.py"
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = cplugins_main(["render", name, "--set", *sets, "-o", str(out)])
        return code, stderr.getvalue(), out.exists()


@pytest.mark.parametrize("template", MODELED, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_values_out_of_range_are_refused_and_nothing_is_written(template, data):
    hp = data.draw(st.sampled_from(template.hyperparameters))
    text = data.draw(invalid(hp))
    code, stderr, written = _render_cli(template.qualified_name, [f"{hp.name}={text}"])
    assert code == 2 and not written, stderr
    line = next(line for line in stderr.splitlines() if line.strip().startswith(
        f"- {hp.name}="))
    allowed = "allowed: " + (hp.allowed() if hp.kind != "str" else "'' (none)")
    assert allowed in line, line


# --- the same value, whatever its Python type --------------------------------------------------
def _spellings(hp: Hyperparameter, value: Any) -> list[Any]:
    forms: list[Any] = [as_text(value)]
    if hp.kind == "bool":
        forms += [np.bool_(value), int(value)]
    elif hp.kind == "int":
        forms += [np.int64(value), np.int32(value) if abs(value) < 2**31 else value,
                  float(value), f"{value}.0"]
    elif hp.kind == "float":
        forms += [np.float64(value)]
    elif hp.kind.endswith("_list"):
        forms += [np.array(value), tuple(value)]
        if hp.kind == "int_list":
            forms += [[np.int64(v) for v in value], [float(v) for v in value]]
    elif hp.kind == "choice" and isinstance(value, int):
        forms += [np.int64(value)]
    return forms


@pytest.mark.parametrize("template", MODELED, ids=IDS)
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_numpy_scalars_integral_floats_and_strings_mean_the_same(template, data):
    hp = data.draw(st.sampled_from(template.hyperparameters))
    value = data.draw(valid(hp))
    expected, error = hp.validate(value)
    assert not error, error
    for form in _spellings(hp, value):
        assert hp.validate(form) == (expected, ""), (form, type(form))


@pytest.mark.parametrize("template", MODELED, ids=IDS)
@settings(max_examples=10, deadline=None, derandomize=True)
@given(data=st.data())
def test_a_name_given_twice_is_refused_and_nothing_is_written(template, data):
    hp = data.draw(st.sampled_from(template.hyperparameters))
    first, second = as_text(data.draw(valid(hp))), as_text(data.draw(valid(hp)))
    with pytest.raises(TemplateError, match=rf"--set: {hp.name} is given twice"):
        parse_assignments([f"{hp.name}={first}", f"{hp.name}={second}"])
    code, stderr, written = _render_cli(template.qualified_name,
                                        [f"{hp.name}={first}", f"{hp.name}={second}"])
    assert code == 2 and not written
    assert f"{hp.name} is given twice" in stderr and "give each hyperparameter once" in stderr


def test_names_must_be_strings_and_values_a_mapping():
    template = MODELED[0]
    with pytest.raises(TemplateValidationError) as info:
        template.validate({1: 2})
    assert info.value.errors[0].startswith("hyperparameter name 1 (int): names are strings; ")
    with pytest.raises(TemplateError, match="values must be a mapping of names to values, got "
                                            "list"):
        template.validate([("batch_size", 2)])
