"""cplugins-augfpn: AugFPN neck for mmdet.

``custom_imports=dict(imports=['cplugins_augfpn'])`` registers its modules.
"""
from cplugins import activate

activate(__name__)
