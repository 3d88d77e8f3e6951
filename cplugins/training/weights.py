"""Pretrained weights: names -> OpenMMLab checkpoint URLs, local files, fail-fast downloads.

Templates map ``coco`` / ``ImageNet-1k`` to the OpenMMLab checkpoint of their model (users with
a network get them downloaded and cached by mmengine) and accept a local file. Offline, a
download must not hang: :func:`ensure_available` asks the server with a short timeout first
(a ``HEAD`` request, which honours ``HTTPS_PROXY``) and raises :class:`WeightsUnavailableError`
explaining how to pass a local file instead. ``cplugins.templates.runtime`` installs the same
check in front of mmengine's ``http(s)://`` checkpoint loader, so a rendered config run by a
stock mmengine ``Runner`` fails fast too.

The timeout is ``CPLUGINS_DOWNLOAD_TIMEOUT`` seconds (default 5).
"""
from __future__ import annotations

import os
import os.path as osp
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

from cplugins.errors import TemplateError

ENV_TIMEOUT = "CPLUGINS_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 5.0
_DET = "https://download.openmmlab.com/mmdetection/v2.0/"
_CLS = "https://download.openmmlab.com/mmclassification/v0/"
_SEG = "https://download.openmmlab.com/mmsegmentation/v0.5/"

#: OpenMMLab checkpoints the built-in templates use (from the metafiles of the pinned repos)
URLS: dict[str, str] = {
    "yolox_tiny_coco": _DET + "yolox/yolox_tiny_8x8_300e_coco/"
                              "yolox_tiny_8x8_300e_coco_20211124_171234-b4047906.pth",
    "yolox_s_coco": _DET + "yolox/yolox_s_8x8_300e_coco/"
                           "yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth",
    "yolox_l_coco": _DET + "yolox/yolox_l_8x8_300e_coco/"
                           "yolox_l_8x8_300e_coco_20211126_140236-d3bd2b23.pth",
    "yolox_x_coco": _DET + "yolox/yolox_x_8x8_300e_coco/"
                           "yolox_x_8x8_300e_coco_20211126_140254-1ef88d67.pth",
    "yolof_coco": _DET + "yolof/yolof_r50_c5_8x8_1x_coco/"
                         "yolof_r50_c5_8x8_1x_coco_20210425_024427-8e864411.pth",
    "ssd300_coco": _DET + "ssd/ssd300_coco/ssd300_coco_20210803_015428-d231a06e.pth",
    "ssd512_coco": _DET + "ssd/ssd512_coco/ssd512_coco_20210803_022849-0a47a1ca.pth",
    "faster_rcnn_coco": _DET + "faster_rcnn/faster_rcnn_r50_fpn_1x_coco/"
                               "faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth",
    "retinanet_ms_coco": _DET + "retinanet/retinanet_r50_fpn_mstrain_3x_coco/"
                                "retinanet_r50_fpn_mstrain_3x_coco_20210718_220633-88476508.pth",
    "resnet50_rsb_a1_in1k": _CLS + "resnet/resnet50_8xb256-rsb-a1-600e_in1k_20211228-20e21305.pth",
    "resnext50_in1k": _CLS + "resnext/resnext50_32x4d_b32x8_imagenet_20210429-56066e27.pth",
    "mit_b0_in1k": _SEG + "pretrain/segformer/mit_b0_20220624-7e0fe6dd.pth",
    # torchvision's ImageNet-1k weights (IMAGENET1K_V1: what mmdet's torchvision://resnetN is)
    "resnet50_in1k_torchvision": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101_in1k_torchvision": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    # caffe-style ResNets (YOLOF): detectron's ImageNet weights, mmdet's open-mmlab:// names
    "resnet50_caffe_in1k": "https://download.openmmlab.com/pretrain/third_party/"
                           "resnet50_caffe-788b5fa3.pth",
    "resnet101_caffe_in1k": "https://download.openmmlab.com/pretrain/third_party/"
                            "resnet101_caffe-3ad79236.pth",
}


class WeightsUnavailableError(TemplateError, RuntimeError):
    """A checkpoint cannot be downloaded (offline, unreachable) or found."""


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


#: the spellings of "no checkpoint" (case-insensitive; the platform documents write ``None``)
NONE_SPELLINGS = ("", "none")


def is_none(value: str) -> bool:
    return value.strip().lower() in NONE_SPELLINGS


def find_alias(value: str, aliases: Mapping[str, str]) -> str | None:
    """The alias ``value`` spells, ignoring case (``imagenet-1k`` -> ``ImageNet-1k``)."""
    folded = {a.lower(): a for a in aliases}
    return folded.get(value.strip().lower())


def check_source(name: str, value: str, aliases: Mapping[str, str]) -> str:
    """'' when ``value`` is empty, an alias, a URL or an existing file; else the error."""
    if is_none(value) or find_alias(value, aliases) is not None or is_url(value):
        return ""
    allowed = ", ".join(["'' (none)", *(repr(a) for a in aliases), "an http(s) URL",
                         "a local checkpoint file"])
    if osp.isfile(osp.expanduser(value)):
        return ""
    return f"{name}={value!r}: no such file; allowed: {allowed}"


def resolve_source(value: str, aliases: Mapping[str, str]) -> str | None:
    """The checkpoint (URL or absolute path) ``value`` stands for; ``None`` for none."""
    if is_none(value):
        return None
    alias = find_alias(value, aliases)
    if alias is not None:
        return aliases[alias]
    if is_url(value):
        return value
    return osp.abspath(osp.expanduser(value))


def download_timeout() -> float:
    text = os.environ.get(ENV_TIMEOUT, "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise WeightsUnavailableError(
            f"{ENV_TIMEOUT}={text!r} is not a number; give seconds, e.g. 5") from None
    if value <= 0:
        raise WeightsUnavailableError(f"{ENV_TIMEOUT}={text!r} must be > 0 seconds")
    return value


def cached_path(url: str) -> str:
    """Where mmengine (``torch.hub``) keeps a downloaded ``url``."""
    hub = os.environ.get("TORCH_HOME") or osp.join(
        os.environ.get("XDG_CACHE_HOME", osp.expanduser("~/.cache")), "torch")
    try:
        import torch.hub

        hub = torch.hub.get_dir()
    except ImportError:
        hub = osp.join(hub, "hub")
    return osp.join(hub, "checkpoints", osp.basename(urllib.parse.urlparse(url).path))


def ensure_available(url: str, timeout: float | None = None, what: str = "checkpoint") -> None:
    """Return when ``url`` is cached or answers a ``HEAD`` request within ``timeout`` seconds.

    Raises :class:`WeightsUnavailableError` (fast) saying why, and how to pass a local file.
    """
    if not is_url(url):
        return
    cache = cached_path(url)
    if osp.isfile(cache):
        return
    timeout = download_timeout() if timeout is None else timeout
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": "cplugins-weights-check"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = getattr(response, "status", 200)
        if status < 400:
            return
        reason = f"the server answered HTTP {status}"
    except urllib.error.HTTPError as exc:
        reason = f"the server answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        cause = getattr(exc, "reason", exc)
        reason = f"it could not be reached (timeout {timeout:g} s; {type(cause).__name__}: {cause})"
    name = osp.basename(urllib.parse.urlparse(url).path)
    raise WeightsUnavailableError(
        f"cannot download the {what} {url}: {reason}. Without network access, download the "
        f"file elsewhere and pass the local file instead: `--set load_from=/path/{name}` (or "
        f"`--set pretrained_weights=/path/{name}` for templates whose pretrained_weights takes "
        f"a path), or copy it to {cache}, where mmengine looks before downloading.")


def iter_checkpoints(cfg: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(config path, checkpoint)`` of ``load_from`` and every ``init_cfg`` ``checkpoint``."""
    if hasattr(cfg, "to_dict") and not isinstance(cfg, Mapping):  # an mmengine Config
        cfg = cfg.to_dict()
    if isinstance(cfg, Mapping):
        for key, value in cfg.items():
            where = f"{path}.{key}" if path else str(key)
            named = key == "load_from" if not path else key in ("checkpoint", "pretrained")
            if named and isinstance(value, str):
                yield where, value
            else:
                yield from iter_checkpoints(value, where)
    elif isinstance(cfg, (list, tuple)):
        for index, value in enumerate(cfg):
            yield from iter_checkpoints(value, f"{path}[{index}]")


def check_checkpoints(cfg: Any, timeout: float | None = None) -> None:
    """Fail fast, before the model is built, when a checkpoint the config names is missing."""
    for where, value in iter_checkpoints(cfg):
        if is_url(value):
            ensure_available(value, timeout, what=f"checkpoint of {where}")
        elif "://" not in value and not osp.isfile(osp.expanduser(value)):
            raise WeightsUnavailableError(f"{where}={value!r}: no such checkpoint file")
