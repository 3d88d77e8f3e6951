"""Discovery, listing, registration, conflicts and failure isolation, on real wheels."""
from __future__ import annotations

import json
import textwrap

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
    result = run_python("import cplugins.all", site_conflict)
    assert result.returncode != 0
    assert "PluginConflictError" in result.stderr
    assert "cplugins-augfpn 0.1.0" in result.stderr
    assert "cplugins-conflict-fixture 0.0.1" in result.stderr
    assert "mmdet::model" in result.stderr

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
    _, listing = _json_list(site_broken, env={"CPLUGINS_LOAD_PLUGINS": "augfpn"})
    assert {p["name"] for p in listing["plugins"]} == {"builtin", "augfpn"}

    result, listing = _json_list(site_broken, env={"CPLUGINS_LOAD_PLUGINS": "augfpn,nosuch"})
    assert "CPLUGINS_LOAD_PLUGINS names plugins that are not installed: nosuch" in result.stderr

    _, listing = _json_list(site_broken, env={"CPLUGINS_LOAD_PLUGINS": ""})
    assert {p["name"] for p in listing["plugins"]} == {"builtin"}

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
