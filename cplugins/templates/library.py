"""The built-in templates: declarations only (contributed by ``cplugins.builtin``).

Each template names its base config, its typed hyperparameters (defaults and ranges as the
training platform documents them) and a render function in ``cplugins.templates.<task>``.
Importing this module imports no torch, numpy or mmengine.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cplugins.templates.model import (
    Check,
    Hyperparameter,
    Template,
    TemplateError,
    check_image_size_aspect,
    check_one_start,
    check_order,
    format_value,
)
from cplugins.training.weights import check_source, is_none, is_url

H = Hyperparameter
#: upper bounds of the open-ended counts and rates: far above any real recipe, low enough that
#: everything derived from them (lrate, repeats, iterations) stays finite and loadable
MAX_SAMPLES = 100_000_000
MAX_ITERS = 10_000_000
MAX_PER_ITEM_LRATE = 1.0
MAX_LRATE = 10.0
_DET = "cplugins.templates.detection:"
_CLS = "cplugins.templates.classification:"


# --- shared hyperparameters (detection) ------------------------------------------------------
def image_size(default: list[int], minimum: int = 32, maximum: int = 2048,
               step: int | None = None) -> H:
    return H("image_size", "int_list", default,
             "one value: the shorter side (aspect kept); two: exact height, width "
             "(needs keep_aspect_ratio=false)", minimum=minimum, maximum=maximum, step=step,
             min_items=1, max_items=2)


def keep_aspect_ratio() -> H:
    return H("keep_aspect_ratio", "bool", True,
             "resize keeping the aspect ratio (shorter side = image_size)")


def max_aspect_ratio(default: float = 1333 / 800) -> H:
    return H("max_aspect_ratio", "float", round(default, 4),
             "longer side is at most this times the shorter one", minimum=1.0, maximum=5.0)


def batch_size(default: int, maximum: int = 32) -> H:
    return H("batch_size", "int", default, "images per training iteration", minimum=1,
             maximum=maximum, tunable=True)


def num_epochs(default: int, maximum: int = 200) -> H:
    return H("num_epochs", "int", default, "training epochs", minimum=1, maximum=maximum)


def min_samples_per_epoch() -> H:
    return H("min_samples_per_epoch", "int", 0,
             "repeat a small training set until an epoch has this many samples (0: off)",
             minimum=0, maximum=MAX_SAMPLES)


def tenfold(value: float) -> tuple[float, float]:
    """``(value / 10, value * 10)`` in 4 significant digits: a learning rate's search range."""
    return float(f"{value / 10:.4g}"), float(f"{value * 10:.4g}")


def per_item_lrate(default: float) -> H:
    """Searched log-uniformly from a tenth to ten times the recipe's value."""
    return H("per_item_lrate", "float", default,
             "learning rate per image: lrate = batch_size * per_item_lrate", minimum=0.0,
             maximum=MAX_PER_ITEM_LRATE, log=True, tunable=True,
             search_range=tenfold(default))


def weight_decay(default: float, optimizer: str) -> H:
    """Searched log-uniformly from 1e-4 to 0.1."""
    return H("weight_decay", "float", default, f"{optimizer} weight decay", minimum=0.0,
             maximum=1.0, log=True, tunable=True, search_range=(1e-4, 0.1))


def pretrained_detector() -> H:
    return H("pretrained_weights", "choice", "none",
             "start from the OpenMMLab COCO checkpoint of this model (coco) or from scratch",
             choices=("none", "coco"))


#: backbones the ResNet-based detectors offer, and their ImageNet-1k weights (torchvision's)
RESNET_BACKBONES = ("resnet50", "resnet101")


def base_model() -> H:
    return H("base_model", "choice", "resnet50", "the backbone network", choices=RESNET_BACKBONES)


def pretrain_base_data() -> H:
    return H("pretrain_base_data", "str", "none",
             "backbone start: none (scratch), ImageNet-1k (the ImageNet weights mmdet uses for "
             "base_model), an http(s) URL or a local checkpoint file")


def check_base_model(values: Mapping[str, Any]) -> list[str]:
    """The OpenMMLab COCO checkpoints here are of the ResNet-50 models."""
    model = values.get("base_model", "resnet50")
    if model == "resnet50":
        return []
    return [f"{name}='coco' with base_model={model!r}: the COCO checkpoint is of the resnet50 "
            f"model; use base_model='resnet50', or pretrain_base_data / a load_from file"
            for name in ("pretrained_weights", "load_from")
            if isinstance(values.get(name), str) and values[name].lower() == "coco"]


def frozen_stages() -> H:
    return H("frozen_stages", "int", 1, "backbone stages kept frozen (stem + stages 1..N)",
             minimum=1, maximum=4)


def random_resize(lower: list[int], upper: list[int], step: int | None = None,
                  what: str = "shorter side", two: bool = True,
                  empty: str = "use image_size") -> tuple[H, H]:
    """random_resize_lower / _upper: empty (``empty``), one value (``what``) or, with ``two``,
    two (height, width) like image_size."""
    values = "; two: height, width (keep_aspect_ratio=false)" if two else ""
    return tuple(
        H(f"random_resize_{end}", "int_list", list(default),
          f"multi-scale training: {adjective} {what}{values}; empty: {empty}", minimum=32,
          maximum=2048, step=step, min_items=0, max_items=2 if two else 1)
        for end, adjective, default in (("lower", "smallest", lower),
                                        ("upper", "largest", upper)))


def check_random_resize(values: Mapping[str, Any]) -> list[str]:
    """random_resize_lower and _upper: both empty or both set, as many values each, in order,
    two values only without keep_aspect_ratio."""
    lower, upper = values.get("random_resize_lower"), values.get("random_resize_upper")
    if lower is None or upper is None:
        return []
    pair = (f"random_resize_lower={format_value(lower)} and "
            f"random_resize_upper={format_value(upper)}")
    if bool(lower) != bool(upper):
        return [f"{pair}: set both, or leave both empty (use image_size)"]
    if len(lower) != len(upper):
        return [f"{pair}: give one value each (shorter side) or two each (height, width)"]
    if any(lo > hi for lo, hi in zip(lower, upper)):
        return [f"random_resize_lower={format_value(lower)} > random_resize_upper="
                f"{format_value(upper)}: random_resize_lower must be <= random_resize_upper"]
    if len(lower) == 2 and values.get("keep_aspect_ratio"):
        return [f"{pair} with keep_aspect_ratio=true: two values are an exact (height, width), "
                "which needs keep_aspect_ratio=false"]
    return []


def load_from() -> H:
    return H("load_from", "str", "",
             "checkpoint to start from: '' (none), 'coco' where the template has one, an "
             "http(s) URL or a local file")


def use_perclass_regression() -> H:
    return H("use_perclass_regression", "bool", True,
             "one box regressor per class (false: class-agnostic boxes)")


def anchor_ratios(default: list[float]) -> H:
    return H("anchor_ratios", "float_list", default, "anchor height/width ratios",
             minimum=0.05, maximum=20.0, min_items=1, max_items=9,
             search_choices=([1.0], [0.5, 1.0, 2.0], [0.33, 0.5, 1.0, 2.0, 3.0]))


def use_focal_loss() -> H:
    return H("use_focal_loss", "bool", True,
             "classification loss: sigmoid focal loss (true) or OHEM cross-entropy, 3 hard "
             "negatives per positive (false)")


# --- shared hyperparameters (classification) -------------------------------------------------
def logreg() -> H:
    return H("logreg", "choice", 1,
             "0: softmax (one label an image); 1: independent sigmoids (multi-label)",
             choices=(0, 1))


def clarifai_image_size(default: int = 224) -> H:
    return H("image_size", "int", default, "training crop / test centre crop side",
             minimum=32, maximum=1024, step=16)


def warmup_iters(default: int) -> H:
    return H("warmup_iters", "int", default, "linear warm-up iterations (0: none)", minimum=0,
             maximum=MAX_ITERS)


def num_items_per_epoch() -> H:
    return H("num_items_per_epoch", "int", 0,
             "images an epoch consists of (0: one pass over the training set)", minimum=0,
             maximum=MAX_SAMPLES)


# --- checks ------------------------------------------------------------------------------------
def check_weights(name: str, aliases: tuple[str, ...]) -> Check:
    """``name`` is '', one of ``aliases``, a URL or an existing local file."""

    def check(values: Mapping[str, Any]) -> list[str]:
        error = check_source(name, values.get(name, ""), dict.fromkeys(aliases, ""))
        return [error] if error else []

    return check


def check_yolox_coco(values: Mapping[str, Any]) -> list[str]:
    sizes = ("tiny", "s", "l", "x")
    if values.get("pretrained_weights") == "coco" and values["model_size"] not in sizes:
        return [f"pretrained_weights='coco' with model_size={values['model_size']!r}: OpenMMLab "
                f"publishes COCO checkpoints for model_size {', '.join(sizes)}; choose one of "
                "those or pretrained_weights='none'"]
    if values.get("load_from") == "coco" and values["model_size"] not in sizes:
        return [f"load_from='coco' with model_size={values['model_size']!r}: no COCO "
                f"checkpoint; allowed model sizes: {', '.join(sizes)}"]
    return []


def check_epochs(values: Mapping[str, Any]) -> list[str]:
    init, total = values["init_epochs"], values["num_epochs"]
    if init > total:
        return [f"init_epochs={init} > num_epochs={total}: the first learning-rate step must "
                "come before the end of training (init_epochs <= num_epochs)"]
    return []


def check_config_file(values: Mapping[str, Any]) -> list[str]:
    path = values.get("config", "")
    if not path.endswith(".py"):
        return [f"config={path!r}: not a Python config file; allowed: a path to an existing "
                ".py config"]
    if not osp.isfile(osp.expanduser(path)):
        return [f"config={path!r}: no such file; allowed: a path to an existing .py config"]
    return []


def check_load_from_url(values: Mapping[str, Any]) -> list[str]:
    value = values.get("load_from", "")
    if value == "coco":
        return ["load_from='coco': this template has no OpenMMLab COCO checkpoint; allowed: "
                "'' (none), an http(s) URL or a local checkpoint file"]
    return check_weights("load_from", ())(values) if value and not is_url(value) else []


# --- the templates -----------------------------------------------------------------------------
def _detection_checks(*extra: Check) -> tuple[Check, ...]:
    return (check_image_size_aspect, check_random_resize, *extra)


def _coco_detector_checks() -> tuple[Check, ...]:
    """Checks of a resizable detector with an OpenMMLab COCO checkpoint."""
    return _detection_checks(check_weights("load_from", ("coco",)),
                             check_weights("pretrain_base_data", ("none", "ImageNet-1k")),
                             check_one_start("pretrained_weights", "load_from"),
                             check_one_start("pretrain_base_data", "pretrained_weights"),
                             check_one_start("pretrain_base_data", "load_from"),
                             check_base_model)


def _coco_detector_hyperparameters(size: int, batch: int, epochs: int, lrate: float,
                                   resize: tuple[list[int], list[int]],
                                   *extra: H) -> tuple[H, ...]:
    """Hyperparameters of a resizable detector with an OpenMMLab COCO checkpoint, then
    ``extra``; ``resize``: the default random_resize_lower / upper (empty: image_size)."""
    return (image_size([size]), keep_aspect_ratio(), max_aspect_ratio(), batch_size(batch),
            num_epochs(epochs), min_samples_per_epoch(), per_item_lrate(lrate),
            pretrained_detector(), frozen_stages(), *random_resize(*resize), load_from(),
            base_model(), pretrain_base_data(), *extra)


def _plugin_config(package: str, name: str) -> str:
    """Absolute path of config ``name`` that plugin ``package`` ships in its ``configs`` folder
    (package data of its distribution), found without importing it; when the plugin is not
    installed, ``package/configs/name`` (rendering then says the base config is missing)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        return f"{package}/configs/{name}"
    return osp.join(locations[0], "configs", name)


def _two_stage(name: str, base: str, description: str, plugins: tuple[str, ...] = (),
               notes: str = "") -> Template:
    return Template(
        name=name, task="detection", base=base, render=_DET + "render_faster_rcnn",
        description=description, plugins=plugins, notes=notes,
        hyperparameters=_coco_detector_hyperparameters(
            800, 2, 12, 0.02 / 16, ([], []), use_perclass_regression(),
            anchor_ratios([0.5, 1.0, 2.0])),
        checks=_coco_detector_checks())


def detection_templates() -> list[Template]:
    yolox = Template(
        name="MMDetection_YOLOX", task="detection",
        base="mmdet::yolox/yolox_s_8xb8-300e_coco.py", render=_DET + "render_yolox",
        description="YOLOX (anchor-free, Mosaic/MixUp, multi-scale batches); sizes tiny..x",
        hyperparameters=(
            H("model_size", "choice", "s", "YOLOX width/depth: tiny, s, m, l or x",
              choices=("tiny", "s", "m", "l", "x")),
            H("image_size", "int", 640, "square training/test size (Mosaic canvas side)",
              minimum=128, maximum=1280, step=32),
            batch_size(8), num_epochs(100), min_samples_per_epoch(),
            per_item_lrate(0.01 / 64), pretrained_detector(),
            *random_resize([], [], step=32, what="batch side", two=False,
                           empty="0.75x to 1.25x image_size, as mmdet's 480-800 at 640"),
            load_from()),
        checks=(check_random_resize,
                check_weights("load_from", ("coco",)),
                check_one_start("pretrained_weights", "load_from"), check_yolox_coco),
        notes="Epoch-based schedule, warm-up, cosine decay and the final no-augmentation "
              "epochs are rescaled from mmdet's 300-epoch recipe to num_epochs.")
    yolof = Template(
        name="MMDetection_YOLOF", task="detection",
        base="mmdet::yolof/yolof_r50-c5_8xb8-1x_coco.py", render=_DET + "render_yolof",
        description="YOLOF: ResNet-50 C5 + dilated encoder, single-level anchors",
        hyperparameters=_coco_detector_hyperparameters(
            800, 8, 12, 0.12 / 64, ([], []), anchor_ratios([1.0])),
        checks=_coco_detector_checks())
    ssd = Template(
        name="MMDetection_SSD", task="detection", base="mmdet::ssd/ssd300_coco.py",
        render=_DET + "render_ssd",
        description="SSD with a VGG-16 backbone, 300x300 or 512x512 input",
        hyperparameters=(
            H("image_size", "choice", 300, "input side: 300 (SSD300) or 512 (SSD512)",
              choices=(300, 512)),
            batch_size(8), num_epochs(24), min_samples_per_epoch(),
            per_item_lrate(0.002 / 64), pretrained_detector(), load_from()),
        checks=(check_weights("load_from", ("coco",)),
                check_one_start("pretrained_weights", "load_from")),
        notes="mmdet's recipe repeats COCO 5 times an epoch (RepeatDataset); here "
              "min_samples_per_epoch sets how long an epoch is.")
    faster = _two_stage(
        "MMDetection_FasterRCNN", "mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
        "Faster R-CNN, ResNet-50 + FPN")
    augfpn = _two_stage(
        "MMDetection_AugFPN",
        _plugin_config("cplugins_augfpn", "faster-rcnn_r50_augfpn_1x_coco.py"),
        "Faster R-CNN, ResNet-50 + the full AugFPN (cplugins-augfpn)", ("cplugins_augfpn",),
        notes="pretrained_weights='coco' loads mmdet's Faster R-CNN R50-FPN COCO checkpoint: "
              "backbone, FPN layers and heads start trained, the AugFPN additions do not.")
    retina_hps = (keep_aspect_ratio(), max_aspect_ratio(), batch_size(8), num_epochs(12),
                  min_samples_per_epoch(), per_item_lrate(0.01 / 16))
    inception_v2 = Template(
        name="Clarifai_InceptionV2", task="detection",
        base="retinanet_bninception_fpn_1x_coco.py",
        render=_DET + "render_retinanet", plugins=("cplugins_inception",),
        description="RetinaNet on a BN-Inception backbone, multi-scale training",
        hyperparameters=(image_size([512]), *retina_hps, *random_resize([384], [640]),
                         load_from(), use_focal_loss(), anchor_ratios([0.5, 1.0, 2.0])),
        checks=_detection_checks(check_load_from_url),
        notes="No OpenMMLab checkpoint exists for this model: load_from takes a URL or a "
              "local file.")
    inception_v4 = Template(
        name="Clarifai_InceptionV4", task="detection",
        base="retinanet_inceptionv4_fpn_1x_coco.py",
        render=_DET + "render_retinanet", plugins=("cplugins_inception",),
        description="RetinaNet on an InceptionV4 backbone",
        hyperparameters=(
            H("image_size", "choice", 512,
              "shorter side (keep_aspect_ratio) or square side: 320, 512 or 800",
              choices=(320, 512, 800)),
            *retina_hps, load_from(), use_focal_loss(), anchor_ratios([0.5, 1.0, 2.0])),
        checks=(check_load_from_url,),
        notes="No OpenMMLab checkpoint exists for this model: load_from takes a URL or a "
              "local file.")
    msc10 = Template(
        name="Detection_MSC10", task="detection",
        base="retinanet_r50_fpn_msc10_3x_coco.py",
        render=_DET + "render_msc10",
        description="RetinaNet R50-FPN, multi-scale training at 10 discrete scales",
        hyperparameters=_coco_detector_hyperparameters(
            640, 4, 36, 0.01 / 16, ([480], [768]), use_focal_loss(),
            anchor_ratios([0.5, 1.0, 2.0])),
        checks=_coco_detector_checks(),
        notes="MSC10 = Multi-Scale training with 10 scales: each training image is resized to "
              "a shorter side drawn from 10 evenly spaced values between "
              "random_resize_lower and random_resize_upper (default 480, 512, ..., 768); "
              "testing uses image_size. A single-stage RetinaNet keeps it simple and fast; "
              "coco starts from mmdet's multi-scale 3x RetinaNet checkpoint.")
    return [yolox, yolof, ssd, faster, augfpn, inception_v2, inception_v4, msc10]


def _clarifai_classifier(name: str, base: str, render: str, description: str,
                         plugins: tuple[str, ...] = (), notes: str = "") -> Template:
    return Template(
        name=name, task="classification", base=base, render=_CLS + render,
        description=description, plugins=plugins, notes=notes,
        hyperparameters=(
            logreg(), clarifai_image_size(), batch_size(32, maximum=128),
            H("init_epochs", "int", 30, "epochs before the first learning-rate step (x0.1)",
              minimum=1, maximum=200),
            H("step_epochs", "int", 30, "epochs between later learning-rate steps",
              minimum=1, maximum=200),
            num_epochs(90), per_item_lrate(0.1 / 256), num_items_per_epoch()),
        checks=(check_epochs,))


def classification_templates() -> list[Template]:
    rsb = Template(
        name="MMClassification_ResNet_50_RSB_A1", task="classification",
        base="mmpretrain::resnet/resnet50_8xb256-rsb-a1-600e_in1k.py",
        render=_CLS + "render_rsb_a1",
        description="ResNet-50, 'ResNet strikes back' A1 recipe (LAMB, BCE, Mixup/CutMix)",
        hyperparameters=(
            H("image_size", "int", 224, "training crop / test centre crop side", minimum=32,
              maximum=1024),
            batch_size(256, maximum=256), num_epochs(600, maximum=600),
            per_item_lrate(0.005 / 2048),
            weight_decay(0.01, "LAMB"),
            H("per_item_min_lrate", "float", 1e-6 / 2048,
              "floor of the cosine decay per image (x batch_size); <= per_item_lrate",
              minimum=0.0, maximum=MAX_PER_ITEM_LRATE, log=True,
              search_range=tenfold(1e-6 / 2048)),
            warmup_iters(3125),
            H("warmup_ratio", "float", 1e-4, "learning-rate factor at the start of warm-up",
              minimum=0.0, maximum=1.0),
            H("pretrained_weights", "str", "none",
              "backbone start: none, ImageNet-1k (OpenMMLab RSB-A1 checkpoint), an http(s) "
              "URL or a local checkpoint file"),
            H("flip_probability", "float", 0.5, "probability of a random flip", minimum=0.0,
              maximum=1.0),
            H("flip_direction", "choice", "horizontal", "direction of the random flip",
              choices=("horizontal", "vertical"))),
        checks=(check_weights("pretrained_weights", ("none", "ImageNet-1k")),
                check_order("per_item_min_lrate", "per_item_lrate")))
    inception_bn = _clarifai_classifier(
        "Clarifai_InceptionBatchNorm", "bninception_8xb32_in1k.py",
        "render_inception_bn", "BN-Inception, Caffe layout (conv biases), step decay",
        ("cplugins_inception",),
        notes="BN-Inception as first published (Caffe: every conv has a bias before its BN).")
    inception_v2 = _clarifai_classifier(
        "Clarifai_InceptionV2", "bninception_8xb32_in1k.py",
        "render_inception_v2", "BN-Inception ('InceptionV2'), no conv bias before BN",
        ("cplugins_inception",),
        notes="The same network as Clarifai_InceptionBatchNorm without the 10,016 redundant "
              "conv biases in front of batch norms.")
    resnext = _clarifai_classifier(
        "Clarifai_ResNext", "mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py",
        "render_resnext", "ResNeXt-50 (32x4d), step decay")
    embednorm = Template(
        name="Clarifai_InceptionTransferEmbedNorm", task="classification",
        base="inceptionv4-embednorm_8xb32_in1k.py",
        render=_CLS + "render_embednorm",
        plugins=("cplugins_inception", "cplugins_embednorm"),
        description="InceptionV4 + normalized-embedding cosine head for transfer learning",
        hyperparameters=(
            logreg(), clarifai_image_size(288), batch_size(32, maximum=128),
            H("lrate", "float", 0.01, "learning rate per minibatch (head)", minimum=0.0,
              maximum=MAX_LRATE, log=True, tunable=True, search_range=(1e-3, 0.1)),
            H("base_gradient_multiplier", "float", 0.1,
              "backbone learning rate = lrate * this (0 freezes it in effect)", minimum=0.0,
              maximum=10.0),
            num_epochs(30), num_items_per_epoch(),
            H("average_horizontal_flips", "bool", True,
              "test time: average the embeddings of an image and its horizontal flip"),
            H("load_from", "str", "",
              "checkpoint to transfer from: '' (none), an http(s) URL or a local file")),
        checks=(check_weights("load_from", ()),),
        notes="Cosine learning-rate decay over num_epochs.")
    return [rsb, inception_bn, inception_v2, resnext, embednorm]


def segmentation_templates() -> list[Template]:
    segformer = Template(
        name="MMSegmentation_SegFormer", task="segmentation",
        base="mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py",
        render="cplugins.templates.segmentation:render_segformer",
        description="SegFormer with a MiT-b0 encoder",
        hyperparameters=(
            H("image_size", "int", 512, "training crop side (test: shorter side)", minimum=32,
              maximum=2048, step=32),
            batch_size(8), num_epochs(50), per_item_lrate(6e-5 / 16),
            weight_decay(0.01, "AdamW"),
            warmup_iters(1500),
            H("pretrained_weights", "str", "none",
              "encoder start: none, ImageNet-1k (OpenMMLab MiT-b0), an http(s) URL or a local "
              "checkpoint file")),
        checks=(check_weights("pretrained_weights", ("none", "ImageNet-1k")),))
    return [segformer]


def barebones_templates() -> list[Template]:
    config = H("config", "str", None,
               "your Python config; _base_ may name mmdet::/mmpretrain::/mmseg:: configs, "
               "files, or 'template:NAME?hp=value&...'", required=True)
    render = "cplugins.templates.barebones:render_barebones"
    return [
        Template(name, task, "", (config,), render, description, checks=(check_config_file,))
        for name, task, description in (
            ("MMDetection", "detection", "your own MMDetection config"),
            ("MMClassification", "classification", "your own MMPretrain config"),
            ("MMSegmentation", "segmentation", "your own MMSegmentation config"))]


def continue_from_eid() -> H:
    return H("continue_from_eid", "str", "",
             "start from the last checkpoint of experiment ID ('' none; `cplugins runs` lists "
             "the ids)")


def check_continue_from_eid(values: Mapping[str, Any]) -> list[str]:
    """The run exists and saved a checkpoint; no other starting weights are given."""
    eid = values.get("continue_from_eid", "")
    if is_none(eid):
        return []
    from cplugins.templates.experiments import checkpoint_of

    try:
        checkpoint_of(eid)
    except TemplateError as exc:
        return [str(exc)]
    return [f"continue_from_eid={eid!r} and {name}={format_value(values[name])} both choose the "
            "starting weights; give only one of them"
            for name in ("pretrained_weights", "load_from")
            if isinstance(values.get(name), str) and not is_none(values[name])]


def with_experiments(template: Template) -> Template:
    """``template`` plus ``continue_from_eid`` (every template with a model has it)."""
    return replace(template, hyperparameters=(*template.hyperparameters, continue_from_eid()),
                   checks=(*template.checks, check_continue_from_eid))


def builtin_templates() -> list[Template]:
    """Every built-in template."""
    modeled = [*detection_templates(), *classification_templates(), *segmentation_templates()]
    return [*map(with_experiments, modeled), *barebones_templates()]
