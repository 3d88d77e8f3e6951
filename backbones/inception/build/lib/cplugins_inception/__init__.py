"""cplugins-inception: Inception-v4 and BN-Inception backbones for mmpretrain and mmdet.

``custom_imports=dict(imports=['cplugins_inception'])`` registers its modules.
"""
from cplugins import activate

activate(__name__)
