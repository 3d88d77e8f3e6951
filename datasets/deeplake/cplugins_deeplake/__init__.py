"""cplugins-deeplake: mmdet 3.x datasets read from Deep Lake 4 datasets.

``custom_imports=dict(imports=['cplugins_deeplake'])`` registers its modules; ``deeplake`` itself
is imported only when a Deep Lake dataset is opened.
"""
from cplugins import activate

activate(__name__)
