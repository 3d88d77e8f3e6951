"""`cplugins list` and activating the plugin do not import deeplake (its import starts a crash
reporter that attempts a DNS lookup)."""
from __future__ import annotations

import subprocess
import sys


def test_listing_and_activation_do_not_import_deeplake():
    code = ("import io, contextlib, sys\n"
            "from cplugins.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    main(['list'])\n"
            "assert 'DeepLakeDetDataset' in out.getvalue(), out.getvalue()\n"
            "import cplugins_deeplake\n"
            "from mmdet.registry import DATASETS, TRANSFORMS\n"
            "assert DATASETS.get('DeepLakeDetDataset')\n"
            "assert TRANSFORMS.get('LoadImageFromDeepLake')\n"
            "print('DEEPLAKE_IMPORTED', 'deeplake' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEEPLAKE_IMPORTED False" in result.stdout
