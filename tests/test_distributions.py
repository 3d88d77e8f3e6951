"""Every plugin distribution installs from a folder of wheels (``pip install --find-links dist
cplugins-<name>``), with cplugins itself resolved as its dependency, and lists and registers."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import PLUGIN_DIRS, run_python

EXPECTED = {  # distribution -> {module: registries} (at least these)
    "cplugins-augfpn": {"AugFPN": {"mmdet::model"}},
    "cplugins-inception": {"InceptionV4": {"mmpretrain::model", "mmdet::model"},
                           "BNInception": {"mmpretrain::model", "mmdet::model"}},
    "cplugins-embednorm": {"EmbedNormClsHead": {"mmpretrain::model"},
                           "EmbedNormClassifier": {"mmpretrain::model"}},
    "cplugins-f1loss": {"SoftF1Loss": {"mmpretrain::model", "mmdet::model"}},
}


@pytest.fixture(scope="module")
def site_all(tmp_path_factory, wheel_dir):
    target = tmp_path_factory.mktemp("site_all")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile",
                    "--find-links", str(wheel_dir), "--target", str(target), *EXPECTED],
                   check=True, capture_output=True, text=True)
    return target


def test_every_plugin_folder_is_covered():
    assert len(PLUGIN_DIRS) == len(EXPECTED)


def _modules(plugin: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module in plugin["modules"]:
        found.setdefault(module["name"], set()).add(module["registry"])
    return found


def test_find_links_install_lists_and_registers_every_plugin(site_all):
    assert (site_all / "cplugins").is_dir()  # the dependency came from the same folder
    result = run_python("", site_all, args=["-m", "cplugins.cli", "list", "--json",
                                            "--activate"])
    assert result.returncode == 0, result.stderr
    plugins = {p["distribution"]: p for p in json.loads(result.stdout)["plugins"]}
    for dist, modules in EXPECTED.items():
        plugin = plugins[dist]
        assert plugin["status"] == "active", plugin
        declared = _modules(plugin)
        assert {name: declared.get(name) for name in modules} == modules
        assert all(m["status"] == "registered" for m in plugin["modules"]), plugin

    code = ("import cplugins_inception, cplugins_f1loss\n"
            "print(cplugins_inception.__file__)\n"
            "from mmdet.registry import MODELS\n"
            "print(MODELS.get('SoftF1Loss').__module__, MODELS.get('InceptionV4').__module__)\n")
    result = run_python(code, site_all)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(site_all))
    assert "cplugins_f1loss.soft_f1 cplugins_inception.inception_v4" in result.stdout
