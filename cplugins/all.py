"""``custom_imports=dict(imports=['cplugins.all'])``: register every installed plugin."""
from cplugins.manager import get_manager

PLUGINS = get_manager().activate_all()
