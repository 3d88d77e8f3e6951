"""Discovery, listing, registration, conflicts and failure isolation, on real wheels."""
from __future__ import annotations

import json
import re
import textwrap

import pytest
from helpers import run_python


def _json_list(site, env=None):
    result = run_python("", site, env=env, args=["-m", "cplugins.cli", "list", "--json"])
    return result, json.loads(result.stdout)


def _plugin(listing: dict, name: str) -> dict:
    return next(p for p in listing["plugins"] if p["name"] == name)


def test_list_shows_wheel_plugin_without_importing_torch(site_ok):
    result, listing = _json_list(site_ok)
    assert result.returncode == 0, result.stderr
    augfpn = _plugin(listing, "augfpn")
    assert augfpn["distribution"] == "cplugins-augfpn"
    assert augfpn["version"] == "0.1.0"
    assert augfpn["status"] == "discovered"
    assert "cplugins_modules" in augfpn["hooks"]
    assert {"name": "AugFPN", "target": "cplugins_augfpn.augfpn:AugFPN",
            "registry": "mmdet::model", "status": "declared", "reason": ""} in augfpn["modules"]
    builtin = _plugin(listing, "builtin")
    assert builtin["builtin"] and builtin["modules"][0]["registry"] == "mmengine::hook"

    code = textwrap.dedent("""
        import sys
        from cplugins.cli import main
        main(["list"])
        heavy = sorted(m for m in ("torch", "mmdet", "mmengine", "numpy") if m in sys.modules)
        import cplugins_augfpn
        print("HEAVY", heavy, "FILE", cplugins_augfpn.__file__)
    """)
    result = run_python(code, site_ok)
    assert result.returncode == 0, result.stderr
    assert "HEAVY [] FILE " + str(site_ok) in result.stdout
    assert "AugFPN" in result.stdout and "mmdet::model" in result.stdout


def test_custom_import_registers_into_mmdet_scope_only(site_ok):
    code = textwrap.dedent("""
        import importlib
        importlib.import_module("cplugins_augfpn")      # what custom_imports does
        from mmdet.registry import MODELS as DET
        from mmengine.registry import MODELS as ROOT
        cls = DET.get("AugFPN")
        print("DET", cls.__module__, "ROOT", "AugFPN" in ROOT.module_dict)
        neck = DET.build(dict(type="AugFPN", in_channels=[8, 16], out_channels=8, num_outs=3))
        print("BUILT", type(neck).__name__)
    """)
    result = run_python(code, site_ok)
    assert result.returncode == 0, result.stderr
    assert "DET cplugins_augfpn.augfpn ROOT False" in result.stdout
    assert "BUILT AugFPN" in result.stdout


def test_registering_twice_is_harmless(site_ok):
    code = textwrap.dedent("""
        import cplugins_augfpn
        from mmdet.registry import MODELS
        first = MODELS.get("AugFPN")
        import cplugins.all                              # every plugin, via entry points
        from cplugins.manager import get_manager
        get_manager().activate_all()                     # and once more
        from cplugins import activate
        activate("cplugins_augfpn")
        print("SAME", MODELS.get("AugFPN") is first)
    """)
    result = run_python(code, site_ok)
    assert result.returncode == 0, result.stderr
    assert "SAME True" in result.stdout


def test_conflicting_distributions_name_both(site_conflict):
    """Two distributions providing 'AugFPN': a config that uses it is refused naming both;
    loading every plugin (tools/train.py) still works for configs that do not."""
    code = textwrap.dedent("""
        import cplugins.all
        from mmdet.registry import MODELS
        MODELS.build(dict(type="PAFPN", in_channels=[8, 16], out_channels=8, num_outs=2))
        MODELS.build(dict(type="AugFPN", in_channels=[8, 16], out_channels=8, num_outs=2))
    """)
    result = run_python(code, site_conflict)
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("cplugins.errors.PluginConflictError: 'AugFPN' in registry "
                            "mmdet::model is provided by two distributions: "), error
    assert "cplugins-augfpn 0.1.0" in error
    assert "cplugins-conflict-fixture 0.0.1" in error

    listed = run_python("", site_conflict, args=["-m", "cplugins.cli", "list"])
    assert listed.returncode == 1
    assert ("CONFLICT: 'AugFPN' in mmdet::model: cplugins-augfpn and "
            "cplugins-conflict-fixture") in listed.stdout


def test_broken_plugins_are_isolated_and_reported(site_broken):
    result, listing = _json_list(site_broken, env={})
    broken = _plugin(listing, "brokenhooks")
    assert broken["status"] == "failed"
    assert broken["error"] == "RuntimeError: broken_hooks_fixture exploded on import"
    assert "plugin 'brokenhooks' (cplugins-broken-hooks-fixture 0.0.1) failed to load: " \
           "RuntimeError: broken_hooks_fixture exploded on import" in result.stderr
    assert _plugin(listing, "augfpn")["status"] == "discovered"
    assert result.returncode == 1  # something is broken: say so in the exit status

    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("always")
        import cplugins.all
        from mmdet.registry import MODELS
        MODELS.build(dict(type="AugFPN", in_channels=[8, 16], out_channels=8, num_outs=3))
        print("AUGFPN OK")
        try:
            MODELS.build(dict(type="BrokenNeck"))
        except Exception as exc:
            print("ERROR", type(exc).__name__, exc)
    """)
    result = run_python(code, site_broken)
    assert result.returncode == 0, result.stderr
    assert "AUGFPN OK" in result.stdout
    assert ("ERROR PluginLoadError BrokenNeck is provided by plugin 'brokenmodule' "
            "(cplugins-broken-module-fixture 0.0.1), which failed to load: ImportError: "
            "broken_module_fixture.neck needs a library that is not installed") in result.stdout
    assert "plugin 'brokenmodule'" in result.stderr  # warned when activated


def test_env_var_limits_what_loads(site_broken):
    # cplugins' own parts are built-in: always loaded (they carry its commands and modules)
    own = {"builtin", "cplugins-training", "cplugins-templates", "cplugins-tune",
           "cplugins-bench", "cplugins-data"}
    _, listing = _json_list(site_broken, env={"CPLUGINS_LOAD_PLUGINS": "augfpn"})
    assert {p["name"] for p in listing["plugins"]} == own | {"augfpn"}
    assert {p["name"] for p in listing["plugins"] if p["builtin"]} == own

    result, listing = _json_list(site_broken, env={"CPLUGINS_LOAD_PLUGINS": "augfpn,nosuch"})
    assert "CPLUGINS_LOAD_PLUGINS names plugins that are not installed: nosuch" in result.stderr

    _, listing = _json_list(site_broken, env={"CPLUGINS_LOAD_PLUGINS": ""})
    assert {p["name"] for p in listing["plugins"]} == own

    # distribution names work too, and an explicit import still activates an excluded plugin
    code = textwrap.dedent("""
        import cplugins_augfpn
        from mmdet.registry import MODELS
        print("HAS", "AugFPN" in MODELS.module_dict)
    """)
    result = run_python(code, site_broken,
                        env={"CPLUGINS_LOAD_PLUGINS": "cplugins-broken-module-fixture"})
    assert result.returncode == 0, result.stderr
    assert "HAS True" in result.stdout


def test_unknown_type_lists_close_names_and_plugins(site_ok):
    code = textwrap.dedent("""
        from cplugins.diagnose import explain_unknown_types
        from mmdet.registry import MODELS
        from mmengine.registry import init_default_scope
        init_default_scope("mmdet")
        for cfg in (dict(type="AugFPM", in_channels=[8], out_channels=8, num_outs=1),
                    dict(type="AugFPN", in_channels=[8], out_channels=8, num_outs=1)):
            try:
                with explain_unknown_types():
                    MODELS.build(cfg)
            except KeyError as exc:
                print(type(exc).__name__, exc)
                print("---")
    """)
    result = run_python(code, site_ok)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("---")[:2]
    assert "UnknownTypeError type 'AugFPM' is not in the mmdet::model registry." in first
    assert "Closest registered names: " in first and "AugFPN" not in first.split("Closest")[0]
    assert "FPN" in first
    installed = first.split("Installed plugins: ")[1]
    assert "augfpn (cplugins-augfpn 0.1.0, discovered)" in installed
    # known to a plugin that is installed but was not imported: say how to import it
    assert ("AugFPN is provided by plugin 'augfpn' (cplugins-augfpn 0.1.0), which is installed "
            "but not imported: add custom_imports=dict(imports=['cplugins_augfpn'])") in second


def test_importing_one_plugin_does_not_swallow_the_next_import(site_broken):
    """Discovery (run by the first import) must not pre-import other plugin packages, or a
    later custom_imports of one of them would be a cached no-op that registers nothing."""
    code = textwrap.dedent("""
        import sys
        import broken_module_fixture          # activates; discovery reads every plugin
        print("PREIMPORTED", "cplugins_augfpn" in sys.modules)
        import cplugins_augfpn                # must still register AugFPN
        from mmdet.registry import MODELS
        print("HAS", "AugFPN" in MODELS.module_dict)
    """)
    result = run_python(code, site_broken)
    assert result.returncode == 0, result.stderr
    assert "PREIMPORTED False" in result.stdout
    assert "HAS True" in result.stdout


# -- what a third-party author hit (issue 12), one small distribution each ------------------
def _only(*plugins: str) -> dict:
    return {"CPLUGINS_LOAD_PLUGINS": ",".join(plugins)}


_HEAVY = ("import sys\nheavy = sorted(m for m in ('torch', 'mmdet', 'mmengine') "
          "if m in sys.modules)\nprint('RC', rc, 'HEAVY', heavy)\n")


def test_hook_module_importing_its_own_package_registers_in_any_import_order(site_authors):
    """selfimport's hook module imports selfimport_fixture. Discovered while another plugin
    activates, that import used to run its cplugins.activate() as a no-op, and the later
    custom_imports of it was a cached no-op too: nothing registered, silently."""
    orders = {
        "other plugin first": "import cplugins_augfpn\nimport selfimport_fixture\n",
        "own package first": "import selfimport_fixture\nimport cplugins_augfpn\n",
        "listing first": "from cplugins.manager import get_manager\n"
                         "get_manager().discover()\nimport selfimport_fixture\n",
    }
    check = ("from mmdet.registry import MODELS\n"
             "print('HAS', MODELS.get('SelfImportNeck').__module__)\n")
    for label, imports in orders.items():
        result = run_python(imports + check, site_authors, env=_only("augfpn", "selfimport"))
        assert result.returncode == 0, (label, result.stderr[-2000:])
        assert "HAS selfimport_fixture.neck" in result.stdout, label


def test_stock_name_clash_is_listed_without_torch_and_refused_only_where_used(site_authors):
    env = _only("stockclash")
    result = run_python("from cplugins.cli import main\nrc = main(['list'])\n" + _HEAVY,
                        site_authors, env=env)
    assert "RC 1 HEAVY []" in result.stdout, result.stderr
    assert ("CONFLICT: 'FPN' in mmdet::model: mmdet (stock, mmdet/models/necks/fpn.py) and "
            "cplugins-stockclash-fixture") in result.stdout

    result = run_python("", site_authors, env=env,
                        args=["-m", "cplugins.cli", "list", "--activate", "--json"])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    listing = json.loads(result.stdout)
    modules = {m["name"]: m for m in _plugin(listing, "stockclash")["modules"]}
    assert modules["ClashFreeNeck"]["status"] == "registered"
    assert modules["FPN"]["status"] == "conflict"
    assert any("'FPN' in registry mmdet::model is mmdet's own" in c for c in listing["conflicts"])

    code = textwrap.dedent("""
        import cplugins.all                      # what tools/train.py does: must not refuse
        from mmengine.registry import init_default_scope
        from mmdet.registry import MODELS
        init_default_scope("mmdet")
        pafpn = MODELS.build(dict(type="PAFPN", in_channels=[8, 16], out_channels=8, num_outs=2))
        own = MODELS.build(dict(type="ClashFreeNeck"))
        print("BUILT", type(pafpn).__name__, type(own).__name__)
        try:
            MODELS.build(dict(type="FPN", in_channels=[8, 16], out_channels=8, num_outs=2))
        except Exception as exc:
            print("REFUSED", type(exc).__name__, exc)
    """)
    result = run_python(code, site_authors, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BUILT PAFPN ClashFreeNeck" in result.stdout
    refusal = result.stdout.split("REFUSED ", 1)[1]
    assert refusal.startswith("PluginConflictError 'FPN' in registry mmdet::model is mmdet's own")
    assert "plugin 'stockclash' (cplugins-stockclash-fixture 0.0.1" in refusal
    assert "CPLUGINS_LOAD_PLUGINS=" in refusal
    assert "pip uninstall cplugins-stockclash-fixture" in refusal
    assert "Uninstall one" not in refusal


def test_declared_but_failed_plugins_explain_the_unknown_type_of_a_stock_runner(
        site_authors, site_broken, tmp_path):
    """A hook module that raises, declares 'mmdet::models' or returns a non-ModuleSpec: the
    config using one of its types gets the reason in the error a stock Runner raises."""
    config = tmp_path / "uses_bad.py"
    config.write_text("custom_imports = dict(imports=['cplugins_augfpn'])\n"
                      "default_scope = 'mmdet'\n"
                      f"work_dir = {str(tmp_path / 'work')!r}\n"
                      "model = dict(type='BadRegistryNeck')\n")
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.runner import Runner
        try:
            Runner.from_cfg(Config.fromfile({str(config)!r}))
        except KeyError as exc:
            print("ERROR", type(exc).__name__, exc)
    """)
    env = {**_only("augfpn", "badregistry", "nonspec", "brokenhooks"),
           "PYTHONPATH": f"{site_authors}:{site_broken}"}
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split("ERROR ", 1)[-1]  # the runner logs to stdout first
    assert out.startswith("UnknownTypeError type 'BadRegistryNeck' is not in the mmdet::model "
                          "registry."), out
    assert "Default scope: mmdet; registries searched: mmdet::model, mmengine::model." in out
    assert ("badregistry (cplugins-badspec-fixture 0.0.1): ValueError: cplugins_modules() of "
            "badspec_fixture.bad_registry: registry 'mmdet::models': unknown registry "
            "'models'; allowed: ") in out
    assert ("nonspec (cplugins-badspec-fixture 0.0.1): TypeError: cplugins_modules() of "
            "badspec_fixture.non_spec must return a list of cplugins.ModuleSpec, got ('NonSpec"
            in out)
    assert ("brokenhooks (cplugins-broken-hooks-fixture 0.0.1): RuntimeError: "
            "broken_hooks_fixture exploded on import") in out


def test_heavy_hook_module_is_reported_with_its_time_and_modules(site_authors):
    result, listing = _json_list(site_authors, env=_only("augfpn", "heavyhook"))
    assert result.returncode == 0, result.stderr
    heavy = _plugin(listing, "heavyhook")
    assert "torch" in heavy["heavy_imports"] and heavy["import_seconds"] > 0
    assert _plugin(listing, "augfpn")["heavy_imports"] == []
    warning = re.search(r"the hook module 'heavyhook_fixture.plugin' of plugin 'heavyhook' "
                        r"\(cplugins-heavyhook-fixture 0.0.1\) imports torch[\w, ]*"
                        r"\((\d+\.\d+) s\)", result.stderr)
    assert warning, result.stderr
    assert float(warning[1]) == pytest.approx(heavy["import_seconds"], abs=0.01)


def test_list_activate_json_with_a_conflict_prints_json(site_conflict):
    result = run_python("", site_conflict, args=["-m", "cplugins.cli", "list", "--activate",
                                                 "--json"])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    listing = json.loads(result.stdout)
    assert any("'AugFPN' in registry mmdet::model is provided by two distributions" in c
               for c in listing["conflicts"])


def test_incompatible_plugin_is_marked_and_refused_with_the_fix(site_authors):
    from importlib import metadata

    mmdet = metadata.version("mmdet")
    env = _only("augfpn", "oldstack")
    result = run_python("from cplugins.cli import main\nrc = main(['list'])\n" + _HEAVY,
                        site_authors, env=env)
    assert "RC 1 HEAVY []" in result.stdout, result.stderr
    message = (f"cplugins-oldstack-fixture 0.0.1 is incompatible with the installed stack: "
               f"requires mmdet<3.0 (mmdet installed {mmdet}). Fix: install a release of "
               f"cplugins-oldstack-fixture that supports the installed versions, or pip install "
               f"'mmdet<3.0'")
    assert f"incompatible: {message}" in result.stdout

    result = run_python("import oldstack_fixture", site_authors, env=env)
    assert result.returncode != 0
    assert f"PluginIncompatibleError: {message}" in result.stderr

    code = textwrap.dedent("""
        import cplugins.all
        from mmdet.registry import MODELS
        MODELS.build(dict(type="AugFPN", in_channels=[8, 16], out_channels=8, num_outs=2))
        try:
            MODELS.build(dict(type="OldStackNeck"))
        except Exception as exc:
            print("REFUSED", type(exc).__name__, exc)
    """)
    result = run_python(code, site_authors, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"REFUSED PluginIncompatibleError {message}" in result.stdout
