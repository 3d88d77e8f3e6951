"""cplugins: pip-installable plugins for the OpenMMLab registries.

Light on purpose: importing ``cplugins`` imports neither torch nor mmdet.
"""
from cplugins import compat
from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec

__version__ = "0.1.0"
__all__ = ["ModuleSpec", "activate", "hookimpl", "__version__"]

compat.arm()


def activate(package: str) -> None:
    """Register the modules of the plugin whose import package is ``package``.

    Plugins call this from their ``__init__`` so that
    ``custom_imports=dict(imports=['cplugins_augfpn'])`` registers them.
    """
    from cplugins.manager import get_manager

    get_manager().activate_package(package)
