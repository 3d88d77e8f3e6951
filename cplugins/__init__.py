"""cplugins: pip-installable plugins for the OpenMMLab registries.

Light on purpose: importing ``cplugins`` imports neither torch nor mmdet, and changes nothing
outside cplugins: the compatibility fixes are opt-in, :func:`cplugins.compat.apply`, or
``CPLUGINS_COMPAT=1`` in the environment (then ``import cplugins`` applies them: how this
repository's ``conftest.py`` passes its opt-in on to the processes its tests start).
"""
import os as _os

from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec

__version__ = "0.1.0"
__all__ = ["ModuleSpec", "activate", "hookimpl", "__version__"]
#: set to "1": ``import cplugins`` applies the compatibility fixes (:mod:`cplugins.compat`)
ENV_COMPAT = "CPLUGINS_COMPAT"

if _os.environ.get(ENV_COMPAT) == "1":
    from cplugins import compat as _compat

    _compat.apply()


def activate(package: str) -> None:
    """Register the modules of the plugin whose import package is ``package``.

    Plugins call this from their ``__init__`` so that
    ``custom_imports=dict(imports=['cplugins_augfpn'])`` registers them.
    """
    from cplugins.manager import get_manager

    get_manager().activate_package(package)
