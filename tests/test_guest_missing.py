"""Missing and unusable plugins are named (issue 22): an unknown ``type`` that a checkpoint's
plugin lock or the index of known plugins maps to a distribution says what to pip install;
``cplugins list --activate`` fails for a plugin that cannot work here."""
from __future__ import annotations

import json
import textwrap

import torch
from helpers import REPO, run_python

from cplugins.diagnose import KNOWN_PLUGINS
from cplugins.manager import get_manager

BUILD = textwrap.dedent("""
    import cplugins.all
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope("mmdet")
    try:
        MODELS.build(dict(type={type_name!r}))
    except KeyError as exc:
        print(exc.args[0])
""")


def test_index_of_known_plugins_is_what_the_repository_publishes():
    manager = get_manager()
    manager.discover()
    published = {r.distribution: sorted(s.name for s in r.specs)
                 for r in manager.records.values()
                 if not r.builtin and r.distribution.startswith("cplugins-")}
    assert len(published) == len(list(REPO.glob("*/*/pyproject.toml")))
    assert published == {d: sorted(n) for d, n in KNOWN_PLUGINS.items()}


def test_unknown_type_names_the_distribution_to_install(tmp_path):
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"cplugins-ghostfpn": ["GhostFPN"]}))
    result = run_python(BUILD.format(type_name="GhostFPN"), env={"CPLUGINS_INDEX": str(index)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("GhostFPN is provided by the plugin distribution cplugins-ghostfpn, which is not "
            "installed: pip install cplugins-ghostfpn") in result.stdout
    # an installed plugin that CPLUGINS_LOAD_PLUGINS leaves out ("Installed plugins: none")
    result = run_python(BUILD.format(type_name="AugFPN"), env={"CPLUGINS_LOAD_PLUGINS": ""})
    assert "AugFPN is provided by cplugins-augfpn 0.1.0, which is installed but left out by " \
           "CPLUGINS_LOAD_PLUGINS=''" in result.stdout, result.stdout + result.stderr[-2000:]
    # a bad index is one clear line, not silence
    index.write_text("[1, 2]")
    result = run_python("from cplugins.diagnose import known_plugins; known_plugins()",
                        env={"CPLUGINS_INDEX": str(index)})
    assert "must map distribution names to lists of type names" in result.stderr


def test_checkpoint_lock_names_the_distribution_and_version(tmp_path):
    """tools/test.py with a checkpoint whose lock says cplugins-augfpn 0.0.9 provided GhostFPN
    (the installed 0.1.0 does not): the unknown type says which release to install."""
    lock = [{"distribution": "cplugins-augfpn", "version": "0.0.9", "package": "cplugins_augfpn",
             "plugin": "augfpn", "modules": ["GhostFPN"], "record_sha256": ""}]
    checkpoint = tmp_path / "old.pth"
    torch.save({"state_dict": {}, "meta": {"cplugins_lock": lock}}, checkpoint)
    config = tmp_path / "ghost.py"
    config.write_text(textwrap.dedent("""
        _base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py',
                  'mmdet::_base_/default_runtime.py']
        model = dict(neck=dict(_delete_=True, type='GhostFPN'))
    """))
    result = run_python("", args=[str(REPO / "tools" / "test.py"), str(config), str(checkpoint),
                                  "--work-dir", str(tmp_path / "work")])
    assert result.returncode != 0
    assert "cplugins-augfpn 0.0.9" in result.stderr  # the lock check's warning
    assert (f"GhostFPN was provided by cplugins-augfpn 0.0.9 when {checkpoint} was made (its "
            "plugin lock); cplugins-augfpn is installed at 0.1.0: pip install "
            "'cplugins-augfpn==0.0.9'") in result.stderr, result.stderr[-3000:]


def test_list_activate_fails_for_a_plugin_whose_library_is_missing():
    """Without mmdet (blocked in the process, as if not installed) AugFPN cannot work: exit 1
    with the reason, not 0 with modules marked skipped."""
    code = ("import sys\nsys.modules['mmdet'] = None  # import mmdet fails: not installed\n"
            "from cplugins.cli import main\nsys.exit(main(['list', '--activate']))\n")
    result = run_python(code, env={"CPLUGINS_LOAD_PLUGINS": "augfpn"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "AugFPN cannot be used: mmdet is not installed (it registers only into " \
           "mmdet::model)" in result.stdout
