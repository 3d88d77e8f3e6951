"""`cplugins data convert`: COCO -> Deep Lake -> COCO gives back the same files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SPLITS = ("train", "val")


def _cli(*commands: list[str]) -> list[tuple[int, str]]:
    """Run ``cplugins`` commands (its ``main``, as the console script does) in one fresh
    interpreter; ``(exit status, stderr)`` of each."""
    code = ("import contextlib, io, json, sys\n"
            "from cplugins.cli import main\n"
            "out = []\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        try:\n"
            "            rc = main(argv)\n"
            "        except SystemExit as exc:\n"
            "            rc = exc.code\n"
            "    out.append((rc, err.getvalue()))\n"
            "print('RESULTS' + json.dumps(out))\n")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(commands)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "RESULTS" in result.stdout, result.stderr[-3000:]
    return [tuple(r) for r in json.loads(result.stdout.split("RESULTS", 1)[1])]


def test_round_trip_is_identical(shapes_coco, shapes_deeplake, tmp_path):
    import deeplake

    coco = Path(shapes_coco["data_root"])
    (tmp_path / "empty").mkdir()
    back, empty, again = _cli(
        ["data", "convert", str(shapes_deeplake), str(tmp_path / "back")],
        ["data", "convert", str(tmp_path / "empty"), str(tmp_path / "out")],
        ["data", "convert", str(shapes_deeplake), str(tmp_path / "out"), "--to", "deeplake"])
    assert back[0] == 0, back[1][-2000:]
    # bad sources: one line each, exit 2, nothing written
    assert empty[0] == 2 and "is neither a COCO folder" in empty[1], empty
    assert again[0] == 2 and "is a Deep Lake dataset already" in again[1], again
    assert not (tmp_path / "out").exists()
    for split in SPLITS:
        original = json.loads((coco / f"annotations/instances_{split}.json").read_text())
        back = json.loads((tmp_path / f"back/annotations/instances_{split}.json").read_text())
        assert back == original  # file names, ids, boxes, labels, categories, extra fields
        assert original["annotations"] and len(original["images"]) == (4 if split == "train"
                                                                        else 2)
        for image in original["images"]:
            name = image["file_name"]
            assert (tmp_path / "back" / split / name).read_bytes() == \
                (coco / split / name).read_bytes(), name
        ds = deeplake.open_read_only(str(shapes_deeplake / split))
        message = ds.history[ds.version].message
        assert str(coco / "annotations" / f"instances_{split}.json") in message, message
        # the stored bytes are the files' bytes: nothing was re-encoded
        assert ds["images"].get_bytes(0) == (coco / split / original["images"][0][
            "file_name"]).read_bytes()


def test_convert_without_deeplake_says_what_to_install(shapes_coco, tmp_path, monkeypatch,
                                                       capsys):
    from cplugins.cli import main

    monkeypatch.setitem(sys.modules, "deeplake", None)  # what an absent package raises
    assert main(["data", "convert", shapes_coco["data_root"], str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "need the deeplake package" in err and "pip install cplugins-deeplake" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
