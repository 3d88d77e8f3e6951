"""``python -m cplugins_augfpn.configs [--write]``: the zoo README table."""
import sys

from cplugins_augfpn.configs import main

sys.exit(main())
