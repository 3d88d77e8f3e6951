"""cplugins-embednorm: normalized-embedding cosine classification head for mmpretrain.

``custom_imports=dict(imports=['cplugins_embednorm'])`` registers its modules.
"""
from cplugins import activate

activate(__name__)
