"""cplugins-f1loss: differentiable soft-F1 loss for mmpretrain and mmdet.

``custom_imports=dict(imports=['cplugins_f1loss'])`` registers its modules.
"""
from cplugins import activate

activate(__name__)
