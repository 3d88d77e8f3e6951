"""cplugins-deeplake: mmdet 3.x datasets read from Deep Lake 4 datasets.

``custom_imports=dict(imports=['cplugins_deeplake'])`` registers its modules; ``deeplake`` itself
is imported only when a Deep Lake dataset is opened.
"""
from cplugins import activate

from .train import train_detector  # light: mmengine is imported when it is called

activate(__name__)

__all__ = ["train_detector"]
