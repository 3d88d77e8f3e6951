"""Templates: the hyperparameter model, validation messages, rendering (pure, standalone), data
layouts, weights that cannot be downloaded, and the command line. No training here
(tests/test_templates_train.py trains every template).
"""
from __future__ import annotations

import json
import math
import re
import textwrap
import time
from pathlib import Path

import pytest
from helpers import run_python

from cplugins.data.layouts import DataError, resolve_data
from cplugins.templates import Hyperparameter, TemplateError, TemplateValidationError
from cplugins.templates.catalog import get_template, load_catalog
from cplugins.templates.rendering import _load_cached, render, render_text
from cplugins.training.weights import (
    URLS,
    WeightsUnavailableError,
    check_checkpoints,
    ensure_available,
)

BUILTIN = {
    "detection": ["MMDetection_YOLOX", "MMDetection_YOLOF", "MMDetection_SSD",
                  "MMDetection_FasterRCNN", "MMDetection_AugFPN", "Clarifai_InceptionV2",
                  "Clarifai_InceptionV4", "Detection_MSC10", "MMDetection"],
    "classification": ["MMClassification_ResNet_50_RSB_A1", "Clarifai_InceptionBatchNorm",
                       "Clarifai_InceptionV2", "Clarifai_ResNext",
                       "Clarifai_InceptionTransferEmbedNorm", "MMClassification"],
    "segmentation": ["MMSegmentation_SegFormer", "MMSegmentation"],
}
MODELED = [f"{task}/{name}" for task, names in BUILTIN.items() for name in names
           if not name.startswith("MM") or "_" in name]


def _errors(name: str, values: dict) -> list[str]:
    with pytest.raises(TemplateValidationError) as info:
        get_template(name).validate(values)
    return info.value.errors


# --- the catalog --------------------------------------------------------------------------------
def test_every_builtin_template_is_contributed_through_the_hook():
    catalog = load_catalog()
    assert not catalog.errors and not catalog.conflicts
    found = {}
    for entry in catalog.entries:
        found.setdefault(entry.template.task, []).append(entry.template.name)
        assert entry.builtin and entry.plugin == "cplugins-templates"  # the templates part
    assert {t: sorted(n) for t, n in found.items()} == {t: sorted(n) for t, n in BUILTIN.items()}


def test_lookup_by_name_task_and_errors():
    assert get_template("MMDetection_YOLOX").task == "detection"
    assert get_template("Clarifai_InceptionV2", "classification").task == "classification"
    assert get_template("detection/Clarifai_InceptionV2").base.endswith(
        "retinanet_bninception_fpn_1x_coco.py")
    with pytest.raises(TemplateError, match=r"exists for several tasks: "
                       r"detection/Clarifai_InceptionV2, classification/Clarifai_InceptionV2"):
        get_template("Clarifai_InceptionV2")
    with pytest.raises(TemplateError, match=r"no template 'MMDetection_YOLOV'\. Did you mean "
                                            r"MMDetection_YOLOX"):
        get_template("MMDetection_YOLOV")
    with pytest.raises(TemplateError, match=r"task 'audio' is unknown; allowed: detection, "
                                            r"classification, segmentation"):
        get_template("audio/Thing")


# --- the hyperparameter model ------------------------------------------------------------------
def test_hyperparameter_parses_command_line_strings():
    hp = Hyperparameter("size", "int_list", [512], "d", minimum=32, maximum=1024, step=16,
                        max_items=2)
    assert hp.validate("512,640") == ([512, 640], "")
    assert hp.validate("[512, 640]") == ([512, 640], "")
    assert hp.validate(512) == ([512], "")
    flag = Hyperparameter("flag", "bool", True, "d")
    assert [flag.validate(v)[0] for v in ("true", "False", "1", "no", True, 0)] == \
           [True, False, True, False, True, False]
    choice = Hyperparameter("logreg", "choice", 1, "d", choices=(0, 1))
    assert choice.validate("0") == (0, "")
    names = Hyperparameter("w", "choice", "none", "d", choices=("none", "ImageNet-1k"))
    assert names.validate("imagenet-1k") == ("ImageNet-1k", "")
    ratio = Hyperparameter("r", "float", 1.5, "d", minimum=1.0, maximum=5.0)
    assert ratio.validate("2.5e0") == (2.5, "")


def test_badly_declared_hyperparameters_are_refused():
    with pytest.raises(TemplateError, match="default 64 is invalid: above the maximum"):
        Hyperparameter("batch_size", "int", 64, "d", minimum=1, maximum=32)
    with pytest.raises(TemplateError, match="kind 'number' is not one of"):
        Hyperparameter("x", "number", 1, "d")
    with pytest.raises(TemplateError, match="a choice needs choices"):
        Hyperparameter("x", "choice", 1, "d")


# --- validation messages -----------------------------------------------------------------------
VALIDATION_CASES = [
    # (template, values, message expected among the errors)
    ("MMDetection_FasterRCNN", {"batch_size": "abc"},
     "batch_size='abc': not an integer; allowed: an integer from 1 to 32"),
    ("MMDetection_FasterRCNN", {"batch_size": 64},
     "batch_size=64: above the maximum; allowed: an integer from 1 to 32"),
    ("MMDetection_FasterRCNN", {"num_epochs": 0},
     "num_epochs=0: below the minimum; allowed: an integer from 1 to 200"),
    ("MMDetection_FasterRCNN", {"max_aspect_ratio": 7.5},
     "max_aspect_ratio=7.5: above the maximum; allowed: a number from 1 to 5"),
    ("MMDetection_FasterRCNN", {"per_item_lrate": -0.1},
     "per_item_lrate=-0.1: below the minimum; allowed: a number from 0 to 1"),
    ("MMDetection_FasterRCNN", {"image_size": [512, 640, 800]},
     "image_size=[512, 640, 800]: 3 values; allowed: a list of 1 to 2 values, each an integer "
     "from 32 to 2048"),
    ("MMDetection_FasterRCNN", {"keep_aspect_ratio": "maybe"},
     "keep_aspect_ratio='maybe': not a boolean; allowed: true or false"),
    ("MMDetection_FasterRCNN", {"pretrained_weights": "imagenet"},
     "pretrained_weights='imagenet': unknown choice; allowed: one of 'none', 'coco'"),
    ("MMDetection_FasterRCNN", {"batchsize": 4},
     "unknown hyperparameter 'batchsize' (did you mean 'batch_size'?); MMDetection_FasterRCNN "
     "accepts: image_size, keep_aspect_ratio"),
    ("MMDetection_FasterRCNN", {"random_resize_lower": 800, "random_resize_upper": 600},
     "random_resize_lower=[800] > random_resize_upper=[600]: random_resize_lower must be <= "
     "random_resize_upper"),
    ("MMDetection_FasterRCNN", {"random_resize_lower": 600},
     "random_resize_lower=[600] and random_resize_upper=[]: set both, or leave both empty (use "
     "image_size)"),
    ("MMDetection_FasterRCNN", {"random_resize_lower": "600,800", "random_resize_upper": 900},
     "random_resize_lower=[600, 800] and random_resize_upper=[900]: give one value each "
     "(shorter side) or two each (height, width)"),
    ("MMDetection_FasterRCNN", {"random_resize_lower": "600,800",
                                "random_resize_upper": "700,900"},
     "random_resize_lower=[600, 800] and random_resize_upper=[700, 900] with "
     "keep_aspect_ratio=true: two values are an exact (height, width)"),
    ("Detection_MSC10", {"random_resize_lower": 16},
     "random_resize_lower=[16]: item 16 is below the minimum; allowed: empty (0 or ''), or a "
     "list of 1 to 2 values, each an integer from 32 to 2048"),
    ("MMDetection_YOLOX", {"random_resize_lower": "320,320", "random_resize_upper": "640,640"},
     "random_resize_lower=[320, 320]: 2 values; allowed: empty (0 or ''), or one value, an "
     "integer from 32 to 2048 in steps of 32"),
    ("MMDetection_FasterRCNN", {"image_size": [512, 640]},
     "image_size=[512, 640] with keep_aspect_ratio=true: two values are an exact (height, "
     "width), which needs keep_aspect_ratio=false"),
    ("MMDetection_FasterRCNN", {"pretrained_weights": "coco", "load_from": "coco"},
     "pretrained_weights='coco' and load_from='coco' both choose the starting weights; give "
     "only one of them"),
    ("MMDetection_FasterRCNN", {"load_from": "/nonexistent/model.pth"},
     "load_from='/nonexistent/model.pth': no such file; allowed: '' (none), 'coco', an http(s) "
     "URL, a local checkpoint file"),
    ("MMDetection_YOLOX", {"model_size": "m", "pretrained_weights": "coco"},
     "pretrained_weights='coco' with model_size='m': OpenMMLab publishes COCO checkpoints for "
     "model_size tiny, s, l, x"),
    ("MMDetection_YOLOX", {"image_size": 500},
     "image_size=500: off the step grid (nearest: 480 or 512); allowed: an integer from 128 to "
     "1280 in steps of 32"),
    ("detection/Clarifai_InceptionV4", {"image_size": 640},
     "image_size=640: unknown choice; allowed: one of 320, 512, 800"),
    ("detection/Clarifai_InceptionV2", {"load_from": "coco"},
     "load_from='coco': this template has no OpenMMLab COCO checkpoint"),
    ("Clarifai_ResNext", {"image_size": 500},
     "image_size=500: off the step grid (nearest: 496 or 512); allowed: an integer from 32 to "
     "1024 in steps of 16"),
    ("Clarifai_ResNext", {"logreg": 2}, "logreg=2: unknown choice; allowed: one of 0, 1"),
    ("Clarifai_ResNext", {"init_epochs": 50, "num_epochs": 40},
     "init_epochs=50 > num_epochs=40: the first learning-rate step must come before the end of "
     "training (init_epochs <= num_epochs)"),
    ("Clarifai_ResNext", {"batch_size": 129},
     "batch_size=129: above the maximum; allowed: an integer from 1 to 128"),
    ("MMClassification_ResNet_50_RSB_A1", {"flip_direction": "diagonal"},
     "flip_direction='diagonal': unknown choice; allowed: one of 'horizontal', 'vertical'"),
    ("MMClassification_ResNet_50_RSB_A1", {"weight_decay": 1.5},
     "weight_decay=1.5: above the maximum; allowed: a number from 0 to 1"),
    ("MMClassification_ResNet_50_RSB_A1", {"pretrained_weights": "/no/such.pth"},
     "pretrained_weights='/no/such.pth': no such file; allowed: '' (none), 'none', "
     "'ImageNet-1k', an http(s) URL, a local checkpoint file"),
    ("MMClassification_ResNet_50_RSB_A1", {"num_epochs": 601},
     "num_epochs=601: above the maximum; allowed: an integer from 1 to 600"),
    ("Clarifai_InceptionTransferEmbedNorm", {"average_horizontal_flips": "sometimes"},
     "average_horizontal_flips='sometimes': not a boolean; allowed: true or false"),
    ("MMSegmentation_SegFormer", {"image_size": 100},
     "image_size=100: off the step grid (nearest: 96 or 128); allowed: an integer from 32 to "
     "2048 in steps of 32"),
    ("MMClassification_ResNet_50_RSB_A1", {"per_item_min_lrate": 1e-5, "per_item_lrate": 1e-6},
     "per_item_min_lrate=1e-05 > per_item_lrate=1e-06: per_item_min_lrate must be <= "
     "per_item_lrate"),
    ("MMClassification_ResNet_50_RSB_A1", {"warmup_iters": 10**9},
     "warmup_iters=1000000000: above the maximum; allowed: an integer from 0 to 10000000"),
    ("MMDetection_FasterRCNN", {"per_item_lrate": 1e308, "batch_size": 32},
     "per_item_lrate=1e+308: above the maximum; allowed: a number from 0 to 1"),
    ("MMDetection_FasterRCNN", {"min_samples_per_epoch": 10**30},
     "min_samples_per_epoch=1000000000000000000000000000000: above the maximum; allowed: an "
     "integer from 0 to 100000000"),
    ("Clarifai_ResNext", {"num_items_per_epoch": "1e12"},
     "num_items_per_epoch=1000000000000: above the maximum; allowed: an integer from 0 to "
     "100000000"),
    ("Clarifai_InceptionTransferEmbedNorm", {"lrate": "inf"},
     "lrate='inf': not a finite number; allowed: a number from 0 to 10"),
    ("MMDetection_FasterRCNN", {"batch_size": 2.5},
     "batch_size=2.5: not an integer; allowed: an integer from 1 to 32"),
    ("MMDetection_FasterRCNN", {"base_model": "resnet101", "pretrained_weights": "coco"},
     "pretrained_weights='coco' with base_model='resnet101': the COCO checkpoint is of the "
     "resnet50 model"),
    ("Detection_MSC10", {"pretrain_base_data": "ImageNet-1k", "load_from": "coco"},
     "pretrain_base_data='ImageNet-1k' and load_from='coco' both choose the starting weights"),
    ("MMDetection_YOLOF", {"pretrain_base_data": "/no/such/backbone.pth"},
     "pretrain_base_data='/no/such/backbone.pth': no such file; allowed: '' (none), 'none', "
     "'ImageNet-1k', an http(s) URL, a local checkpoint file"),
    ("MMDetection_FasterRCNN", {"base_model": "vgg16"},
     "base_model='vgg16': unknown choice; allowed: one of 'resnet50', 'resnet101'"),
    ("MMDetection", {}, "config is required; allowed: a string (required)"),
    ("MMDetection", {"config": "/nonexistent/cfg.py"},
     "config='/nonexistent/cfg.py': no such file; allowed: a path to an existing .py config"),
]


@pytest.mark.parametrize("name, values, message", VALIDATION_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1]) or 'empty'}" for c in VALIDATION_CASES])
def test_validation_error_names_value_and_allowed(name, values, message):
    errors = _errors(name, values)
    assert any(e.startswith(message) for e in errors), errors


def test_all_errors_are_reported_together_and_nothing_is_built():
    _load_cached.cache_clear()
    with pytest.raises(TemplateValidationError) as info:
        render("MMDetection_FasterRCNN", {"batch_size": 0, "image_size": "big",
                                          "use_focal_loss": True})
    error = info.value
    assert len(error.errors) == 3
    assert str(error).startswith("template MMDetection_FasterRCNN: 3 invalid hyperparameters; "
                                 "nothing was rendered:\n  - ")
    assert "batch_size=0: below the minimum" in str(error)
    assert "image_size='big': not a number" in str(error) or \
           "image_size='big': not an integer" in str(error)
    assert "unknown hyperparameter 'use_focal_loss'" in str(error)
    assert _load_cached.cache_info().currsize == 0  # no base config was even loaded


def test_command_line_assignments_must_be_name_value():
    with pytest.raises(TemplateError, match=r"--set 'batch_size': must look like NAME=VALUE"):
        render("MMDetection_FasterRCNN", ["batch_size"])


# --- rendering -------------------------------------------------------------------------------
@pytest.mark.parametrize("qualified", MODELED)
def test_renders_with_defaults_standalone_and_pure(qualified):
    from mmengine.config import Config

    template = get_template(qualified)
    text = render_text(template)
    assert text == render_text(template, {})  # pure: same input, same text
    assert not re.search(r"^_base_\s*=", text, re.M)
    cfg = Config.fromstring(text, ".py")
    assert cfg.template["name"] == qualified
    assert cfg.template["hyperparameters"] == template.defaults()
    imports = cfg.custom_imports["imports"]
    assert imports[0] == "cplugins.templates.runtime"  # first: it opts in to the compat fixes
    assert set(template.plugins) <= set(imports)
    assert cfg.default_scope == template.scope
    assert cfg.synthetic_data["task"] == template.task
    assert cfg.load_from is None  # defaults train offline
    num_classes = {n["num_classes"] for n in _walk(cfg.model) if "num_classes" in n}
    assert num_classes == {4 if template.task == "segmentation" else 3}
    assert not {"img_scale", "train_pipeline", "max_epochs", "_base_"} & set(cfg.keys())


def test_rendering_ignores_the_order_of_values():
    a = render_text("MMDetection_YOLOF", {"batch_size": 4, "image_size": [640]})
    b = render_text("MMDetection_YOLOF", ["image_size=640", "batch_size=4"])
    assert a == b
    assert a != render_text("MMDetection_YOLOF", {"batch_size": 4})


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def _get(cfg, path: str):
    """``a.b[type=Resize].c``, ``a[0].b``: config lookup by a dotted path."""
    node = cfg
    for part in path.split("."):
        match = re.fullmatch(r"(\w+)(?:\[(\w+)=(\w+)\]|\[(\d+)\])?", part)
        name, key, value, index = match.groups()
        node = node[name]
        if key:
            node = next(item for item in node if item.get(key) == value)
        elif index is not None:
            node = node[int(index)]
    return node


def _plain(value):
    return json.loads(json.dumps(value, default=list))


TRAIN_PIPE = "train_dataloader.dataset.pipeline"
VAL_PIPE = "val_dataloader.dataset.pipeline"
LR = "optim_wrapper.optimizer.lr"
def resnet_cases(imagenet_101: str) -> list[tuple]:
    """base_model and pretrain_base_data of the ResNet-based detectors."""
    return [({"base_model": "resnet101"}, "model.backbone.depth", 101),
            ({"pretrain_base_data": "ImageNet-1k", "base_model": "resnet101"},
             "model.backbone.init_cfg", {"type": "Pretrained", "checkpoint": imagenet_101})]


TWO_STAGE = [
    ({"image_size": [640]}, f"{TRAIN_PIPE}[type=Resize].scale", [1066, 640]),
    ({"keep_aspect_ratio": False, "image_size": [512, 640]}, f"{VAL_PIPE}[type=Resize]",
     {"type": "Resize", "scale": [640, 512], "keep_ratio": False}),
    ({"max_aspect_ratio": 2.0}, f"{TRAIN_PIPE}[type=Resize].scale", [1600, 800]),
    ({"batch_size": 4}, "train_dataloader.batch_size", 4),
    ({"num_epochs": 24}, "param_scheduler[1].milestones", [16, 22]),
    ({"min_samples_per_epoch": 100}, "train_dataloader.dataset.min_samples", 100),
    ({"per_item_lrate": 0.01}, LR, 0.02),
    ({"pretrained_weights": "coco"}, "load_from", URLS["faster_rcnn_coco"]),
    ({"frozen_stages": 3}, "model.backbone.frozen_stages", 3),
    ({"random_resize_lower": 640, "random_resize_upper": 1000},
     f"{TRAIN_PIPE}[type=RandomResize].ratio_range", [0.8, 1.25]),
    ({"random_resize_upper": 1000, "random_resize_lower": 800},
     f"{TRAIN_PIPE}[type=RandomResize].scale", [1333, 800]),
    ({"load_from": "{ckpt}"}, "load_from", "{ckpt}"),
    ({"use_perclass_regression": False}, "model.roi_head.bbox_head.reg_class_agnostic", True),
    ({"anchor_ratios": [0.25, 1, 4]}, "model.rpn_head.anchor_generator.ratios", [0.25, 1, 4]),
    *resnet_cases(URLS["resnet101_in1k_torchvision"]),
    ({"keep_aspect_ratio": False, "image_size": [512, 640], "random_resize_lower": "480,600",
      "random_resize_upper": "544,680"}, f"{TRAIN_PIPE}[type=RandomResize].scale",
     [[600, 480], [680, 544]]),
]
def retina(short: int, batch: int) -> list[tuple]:
    """Cases shared by the RetinaNet-style templates (default shorter side, batch size)."""
    return [
        ({"keep_aspect_ratio": False}, f"{VAL_PIPE}[type=Resize].keep_ratio", False),
        ({"max_aspect_ratio": 3.0}, f"{VAL_PIPE}[type=Resize].scale", [3 * short, short]),
        ({"batch_size": 16}, LR, 16 * 0.01 / 16),
        ({"num_epochs": 6}, "train_cfg.max_epochs", 6),
        ({"min_samples_per_epoch": 64}, "train_dataloader.dataset.type", "MinSamplesDataset"),
        ({"per_item_lrate": 0.002}, LR, batch * 0.002),
        ({"load_from": "http://example.com/r.pth"}, "load_from", "http://example.com/r.pth"),
        ({"use_focal_loss": False}, "model.bbox_head.loss_cls",
         {"type": "OHEMLoss", "use_sigmoid": True, "neg_pos_ratio": 3, "loss_weight": 1.0}),
        ({"anchor_ratios": [1.0]}, "model.bbox_head.anchor_generator.ratios", [1.0]),
    ]


CLARIFAI = [
    ({"logreg": 0}, "model.head.type", "LinearClsHead"),
    ({"image_size": 320}, f"{TRAIN_PIPE}[type=RandomResizedCrop].scale", 320),
    ({"batch_size": 64}, LR, 0.025),
    ({"init_epochs": 10}, "param_scheduler[0].milestones", [10, 40, 70]),
    ({"step_epochs": 20}, "param_scheduler[0].milestones", [30, 50, 70]),
    ({"num_epochs": 40}, "train_cfg.max_epochs", 40),
    ({"per_item_lrate": 0.001}, LR, 0.032),
    ({"num_items_per_epoch": 1000}, "train_cfg",
     {"type": "IterBasedTrainLoop", "max_iters": 90 * 32, "val_interval": 32}),
]
HP_CASES = {
    "MMDetection_YOLOX": [
        ({"model_size": "tiny"}, "model.neck", {"in_channels": [96, 192, 384],
                                                "out_channels": 96}),
        ({"image_size": 416}, "train_dataloader.dataset.pipeline[type=Mosaic].img_scale",
         [416, 416]),
        ({"batch_size": 16}, LR, 16 * 0.01 / 64),
        ({"num_epochs": 200}, "custom_hooks[0].num_last_epochs", 10),
        ({"min_samples_per_epoch": 50}, "train_dataloader.dataset.dataset.type",
         "MinSamplesDataset"),
        ({"per_item_lrate": 0.001}, LR, 0.008),
        ({"pretrained_weights": "coco"}, "load_from", URLS["yolox_s_coco"]),
        ({"random_resize_lower": 320, "random_resize_upper": 800},
         "model.data_preprocessor.batch_augments[0].random_size_range", [320, 800]),
        ({"random_resize_upper": 960, "random_resize_lower": 480},
         "model.data_preprocessor.batch_augments[0].random_size_range", [480, 960]),
        ({"image_size": 320}, "model.data_preprocessor.batch_augments[0].random_size_range",
         [256, 384]),
        ({"load_from": "coco"}, "load_from", URLS["yolox_s_coco"]),
    ],
    "MMDetection_YOLOF": [
        ({"image_size": [640]}, f"{TRAIN_PIPE}[type=Resize].scale", [1066, 640]),
        ({"keep_aspect_ratio": False, "image_size": [608]}, f"{VAL_PIPE}[type=Resize].scale",
         [608, 608]),
        ({"max_aspect_ratio": 1.0}, f"{TRAIN_PIPE}[type=Resize].scale", [800, 800]),
        ({"batch_size": 4}, LR, 4 * 0.12 / 64),
        ({"num_epochs": 24}, "param_scheduler[1].milestones", [16, 22]),
        ({"min_samples_per_epoch": 10}, "train_dataloader.dataset.min_samples", 10),
        ({"per_item_lrate": 0.001}, LR, 0.008),
        ({"pretrained_weights": "coco"}, "load_from", URLS["yolof_coco"]),
        ({"frozen_stages": 4}, "model.backbone.frozen_stages", 4),
        ({"random_resize_lower": 600, "random_resize_upper": 1000},
         f"{TRAIN_PIPE}[type=RandomResize].ratio_range", [0.75, 1.25]),
        ({"random_resize_upper": 900, "random_resize_lower": 800},
         f"{TRAIN_PIPE}[type=RandomResize].ratio_range", [1.0, 1.125]),
        ({"load_from": "coco"}, "load_from", URLS["yolof_coco"]),
        ({"anchor_ratios": [0.5, 1]}, "model.bbox_head.anchor_generator.ratios", [0.5, 1.0]),
        *resnet_cases(URLS["resnet101_caffe_in1k"]),
    ],
    "MMDetection_SSD": [
        ({"image_size": 512}, "model.bbox_head.anchor_generator.input_size", 512),
        ({"batch_size": 4}, LR, 4 * 0.002 / 64),
        ({"num_epochs": 12}, "param_scheduler[1].milestones", [8, 11]),
        ({"min_samples_per_epoch": 10}, "train_dataloader.dataset.type", "MinSamplesDataset"),
        ({"per_item_lrate": 0.001}, LR, 0.008),
        ({"pretrained_weights": "coco"}, "load_from", URLS["ssd300_coco"]),
        ({"load_from": "coco", "image_size": 512}, "load_from", URLS["ssd512_coco"]),
    ],
    "MMDetection_FasterRCNN": TWO_STAGE,
    "MMDetection_AugFPN": TWO_STAGE,
    "detection/Clarifai_InceptionV2": [
        ({"image_size": [640]}, f"{VAL_PIPE}[type=Resize].scale", [1066, 640]),
        *retina(512, 8),
        ({"random_resize_lower": 256}, f"{TRAIN_PIPE}[type=RandomResize].ratio_range",
         [0.5, 1.25]),
        ({"random_resize_upper": 768}, f"{TRAIN_PIPE}[type=RandomResize].ratio_range",
         [0.75, 1.5]),
    ],
    "detection/Clarifai_InceptionV4": [
        ({"image_size": 800}, f"{TRAIN_PIPE}[type=Resize].scale", [1333, 800]),
        *retina(512, 8),
    ],
    "Detection_MSC10": [
        ({"image_size": [800]}, f"{VAL_PIPE}[type=Resize].scale", [1333, 800]),
        *retina(640, 4),
        ({"pretrained_weights": "coco"}, "load_from", URLS["retinanet_ms_coco"]),
        ({"frozen_stages": 2}, "model.backbone.frozen_stages", 2),
        ({"random_resize_lower": 300},
         f"{TRAIN_PIPE}[type=RandomChoiceResize].scales[0]", [500, 300]),
        ({"random_resize_upper": 1200},
         f"{TRAIN_PIPE}[type=RandomChoiceResize].scales[9]", [2000, 1200]),
        *resnet_cases(URLS["resnet101_in1k_torchvision"]),
        ({"keep_aspect_ratio": False, "random_resize_lower": [300, 400],
          "random_resize_upper": [300, 490]},
         f"{TRAIN_PIPE}[type=RandomChoiceResize].scales[1]", [410, 300]),
    ],
    "MMClassification_ResNet_50_RSB_A1": [
        ({"image_size": 160}, f"{VAL_PIPE}[type=CenterCrop].crop_size", 160),
        ({"batch_size": 64}, LR, 64 * 0.005 / 2048),
        ({"num_epochs": 100}, "param_scheduler[1].end", 100),
        ({"per_item_lrate": 1e-5}, LR, 256 * 1e-5),
        ({"weight_decay": 0.05}, "optim_wrapper.optimizer.weight_decay", 0.05),
        ({"per_item_min_lrate": 1e-8}, "param_scheduler[1].eta_min", 256 * 1e-8),
        ({"warmup_iters": 100}, "param_scheduler[0].end", 100),
        ({"warmup_ratio": 0.01}, "param_scheduler[0].start_factor", 0.01),
        ({"pretrained_weights": "ImageNet-1k"}, "model.backbone.init_cfg",
         {"type": "Pretrained", "checkpoint": URLS["resnet50_rsb_a1_in1k"],
          "prefix": "backbone"}),
        ({"flip_probability": 0.2}, f"{TRAIN_PIPE}[type=RandomFlip].prob", 0.2),
        ({"flip_direction": "vertical"}, f"{TRAIN_PIPE}[type=RandomFlip].direction",
         "vertical"),
    ],
    "Clarifai_InceptionBatchNorm": CLARIFAI,
    "classification/Clarifai_InceptionV2": CLARIFAI,
    "Clarifai_ResNext": CLARIFAI,
    "Clarifai_InceptionTransferEmbedNorm": [
        ({"logreg": 0}, "model.head.logreg", False),
        ({"image_size": 224}, f"{VAL_PIPE}[type=CenterCrop].crop_size", 224),
        ({"batch_size": 8}, "train_dataloader.batch_size", 8),
        ({"lrate": 0.5}, LR, 0.5),
        ({"base_gradient_multiplier": 0.5},
         "optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult", 0.5),
        ({"num_epochs": 10}, "param_scheduler[0].T_max", 10),
        ({"num_items_per_epoch": 64}, "train_cfg.max_iters", 30 * 2),
        ({"average_horizontal_flips": False}, "model.head.average_flips", False),
        ({"load_from": "{ckpt}"}, "load_from", "{ckpt}"),
    ],
    "MMSegmentation_SegFormer": [
        ({"image_size": 256}, "model.data_preprocessor.size", [256, 256]),
        ({"batch_size": 2}, LR, 2 * 6e-5 / 16),
        ({"num_epochs": 20}, "train_cfg.max_epochs", 20),
        ({"per_item_lrate": 1e-5}, LR, 8e-5),
        ({"weight_decay": 0.1}, "optim_wrapper.optimizer.weight_decay", 0.1),
        ({"warmup_iters": 10}, "param_scheduler[0].end", 10),
        ({"pretrained_weights": "ImageNet-1k"}, "model.backbone.init_cfg.checkpoint",
         URLS["mit_b0_in1k"]),
    ],
}


def test_the_table_covers_every_hyperparameter():
    covered = {(name, hp) for name, cases in HP_CASES.items() for values, _, _ in cases
               for hp in values}
    # continue_from_eid needs a recorded run: tests/test_templates_experiments.py
    expected = {(name, hp.name) for name in HP_CASES
                for hp in get_template(name).hyperparameters if hp.name != "continue_from_eid"}
    assert expected - covered == set()
    assert {get_template(name).qualified_name for name in HP_CASES} == set(MODELED)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("weights") / "model.pth"
    path.write_bytes(b"not loaded by these tests")
    return str(path)


@pytest.mark.parametrize("name", sorted(HP_CASES))
def test_each_hyperparameter_changes_the_config_where_it_should(name, checkpoint):
    default = render(name).to_dict()
    for values, path, expected in HP_CASES[name]:
        values = {k: (checkpoint if v == "{ckpt}" else v) for k, v in values.items()}
        expected = checkpoint if expected == "{ckpt}" else expected
        cfg = render(name, values).to_dict()
        got = _plain(_get(cfg, path))
        if isinstance(expected, dict) and isinstance(got, dict):
            got = {k: got.get(k) for k in expected}
        if isinstance(expected, float):
            assert math.isclose(got, expected, rel_tol=1e-9), (values, path, got)
        else:
            assert got == _plain(expected), (values, path, got)
        try:
            before = _plain(_get(default, path))
        except (KeyError, StopIteration, IndexError, TypeError):
            continue  # the default has no such entry at all: the value added it
        if isinstance(expected, dict) and isinstance(before, dict):
            before = {k: before.get(k) for k in expected}
        assert before != got, f"{name} {values}: {path} is {got} with the default too"


@pytest.mark.parametrize("name, spelling", [
    ("MMClassification_ResNet_50_RSB_A1", "None"), ("MMSegmentation_SegFormer", "NONE"),
    ("MMDetection_FasterRCNN", "None"), ("MMDetection_YOLOX", "COCO"),
    ("MMClassification_ResNet_50_RSB_A1", "imagenet-1K")])
def test_documented_spellings_of_pretrained_weights(name, spelling):
    canonical = {"none": "none", "coco": "coco", "imagenet-1k": "ImageNet-1k"}[spelling.lower()]
    assert render_text(name, {"pretrained_weights": spelling}).split("template = ")[0] == \
        render_text(name, {"pretrained_weights": canonical}).split("template = ")[0]


def test_base_model_builds_that_backbone():
    from mmengine.registry import MODELS, DefaultScope

    import cplugins.all  # noqa: F401

    cfg = render("Detection_MSC10", {"base_model": "resnet101"})
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        backbone = MODELS.build(cfg.model.backbone)
    assert [len(getattr(backbone, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]


def test_per_item_learning_rate_is_multiplied_by_the_batch_size():
    for name in ("MMDetection_FasterRCNN", "Clarifai_ResNext", "MMSegmentation_SegFormer"):
        cfg = render(name, {"batch_size": 3, "per_item_lrate": 0.004})
        assert math.isclose(cfg.optim_wrapper.optimizer.lr, 0.012)


def test_msc10_trains_at_ten_scales():
    cfg = render("Detection_MSC10")
    scales = _get(cfg.to_dict(), f"{TRAIN_PIPE}[type=RandomChoiceResize].scales")
    assert [s[1] for s in scales] == list(range(480, 769, 32))
    assert len(scales) == 10


def test_overrides_apply_after_rendering():
    cfg = render("Clarifai_ResNext", overrides=["train_dataloader.num_workers=0",
                                                "model.backbone.depth=101"])
    assert cfg.train_dataloader.num_workers == 0 and cfg.model.backbone.depth == 101


# --- data --------------------------------------------------------------------------------------
def test_data_layouts_and_their_errors(tmp_path):
    from cplugins.shapes import (
        make_shapes_classification,
        make_shapes_detection,
        make_shapes_segmentation,
    )

    det = make_shapes_detection(tmp_path / "det", num_train=2, num_val=1, image_size=(64, 64))
    info = resolve_data("detection", det["data_root"])
    assert info.classes == ("circle", "square", "triangle")
    assert info.splits["train"] == {"ann_file": "annotations/instances_train.json",
                                    "img": "train/"}
    cfg = render("MMDetection_FasterRCNN", data=det["data_root"])
    assert cfg.val_evaluator.ann_file == info.root + "annotations/instances_val.json"
    assert "synthetic_data" not in cfg and cfg.template["data"] == info.root

    cls = make_shapes_classification(tmp_path / "cls", num_train=3, num_val=3, image_size=32)
    assert resolve_data("classification", cls["data_root"]).num_classes == 3
    seg = make_shapes_segmentation(tmp_path / "seg", num_train=1, num_val=1, image_size=(32, 32))
    assert resolve_data("segmentation", seg["data_root"]).classes[0] == "background"

    with pytest.raises(DataError, match=r"no train or val annotation json in .*detection "
                                        r"templates take a COCO-format dataset"):
        resolve_data("detection", cls["data_root"])
    (Path(cls["data_root"]) / "val" / "square").rename(Path(cls["data_root"]) / "val" / "box")
    with pytest.raises(DataError, match=r"train/ and val/ must have the same class folders.*"
                                        r"only in train: square; only in val: box"):
        resolve_data("classification", cls["data_root"])
    with pytest.raises(DataError, match=r"no img_dir/train/ folder; segmentation templates"):
        resolve_data("segmentation", det["data_root"])
    with pytest.raises(DataError, match=r"--data '/nonexistent/data': no such directory"):
        resolve_data("detection", "/nonexistent/data")


# --- weights -----------------------------------------------------------------------------------
def test_unreachable_download_fails_fast_with_how_to_pass_a_local_file(monkeypatch):
    monkeypatch.setenv("CPLUGINS_DOWNLOAD_TIMEOUT", "2")
    for url in ("http://127.0.0.1:9/detector.pth", "http://192.0.2.1/detector.pth"):
        start = time.monotonic()
        with pytest.raises(WeightsUnavailableError) as info:
            ensure_available(url)
        assert time.monotonic() - start < 10
        message = str(info.value)
        assert message.startswith(f"cannot download the checkpoint {url}: it could not be "
                                  "reached (timeout 2 s")
        assert "pass the local file instead: `--set load_from=/path/detector.pth`" in message
    cfg = render("MMDetection_FasterRCNN", {"load_from": "http://127.0.0.1:9/frcnn.pth"})
    with pytest.raises(WeightsUnavailableError, match="checkpoint of load_from"):
        check_checkpoints(cfg)
    cfg = render("MMClassification_ResNet_50_RSB_A1",
                 {"pretrained_weights": "http://127.0.0.1:9/b.pth"})
    with pytest.raises(WeightsUnavailableError,
                       match=r"checkpoint of model\.backbone\.init_cfg\.checkpoint"):
        check_checkpoints(cfg)


def test_local_weights_are_accepted(checkpoint):
    cfg = render("MMSegmentation_SegFormer", {"pretrained_weights": checkpoint})
    assert cfg.model.backbone.init_cfg.checkpoint == checkpoint
    check_checkpoints(cfg)  # a local file: nothing to download


# --- command line ------------------------------------------------------------------------------
def test_cli_lists_and_shows_templates_without_importing_torch():
    code = textwrap.dedent("""
        import sys
        from cplugins.cli import main
        assert main(["templates"]) == 0
        assert main(["templates", "show", "detection/Clarifai_InceptionV4"]) == 0
        assert main(["templates", "show", "Clarifai_InceptionV2"]) == 2
        assert main(["templates", "--task", "segmentation", "--json"]) == 0
        heavy = sorted(m for m in ("torch", "mmengine", "mmdet", "numpy") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "HEAVY []" in out
    for names in BUILTIN.values():
        for name in names:
            assert re.search(rf"^{name}\s", out, re.M), name
    assert "cplugins_augfpn" in out and "bninception_8xb32_in1k.py" in out
    assert re.search(r"^image_size\s+choice\s+512\s+one of 320, 512, 800\s", out, re.M)
    assert re.search(r"^use_focal_loss\s+bool\s+true\s+true or false\s", out, re.M)
    assert "exists for several tasks" in result.stderr
    listing = json.loads(out[out.index('{\n  "templates"'):out.rindex("}") + 1])
    assert [t["name"] for t in listing["templates"]] == BUILTIN["segmentation"]


def test_cli_render_writes_the_same_config_as_the_api(tmp_path):
    out = tmp_path / "yolox.py"
    result = run_python("", args=["-m", "cplugins.cli", "render", "MMDetection_YOLOX", "--set",
                                  "model_size=tiny", "--set", "batch_size=4", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert out.read_text() == render_text("MMDetection_YOLOX", {"model_size": "tiny",
                                                                "batch_size": 4})
    result = run_python("", args=["-m", "cplugins.cli", "render", "MMDetection_YOLOX", "--set",
                                  "batch_size=99", "model_size=huge", "-o", str(out)])
    assert result.returncode == 2
    assert "2 invalid hyperparameters" in result.stderr
    assert "batch_size=99: above the maximum" in result.stderr
    assert "model_size='huge': unknown choice; allowed: one of 'tiny', 's', 'm', 'l', 'x'" in \
           result.stderr


def test_a_plugin_contributes_a_template_through_the_hook(tmp_path):
    """A real installed distribution (dist-info + entry point) with a cplugins_templates hook."""
    site = tmp_path / "site"
    package = site / "mytemplates"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(textwrap.dedent("""
        from cplugins import hookimpl
        from cplugins.templates import Hyperparameter, Template

        @hookimpl
        def cplugins_templates():
            return [Template(
                name="My_RetinaNet18", task="detection",
                base="mmdet::retinanet/retinanet_r18_fpn_1x_coco.py",
                render="mytemplates.render:render", description="RetinaNet R-18, my way",
                hyperparameters=(Hyperparameter("depth", "choice", 18, "backbone depth",
                                                choices=(18, 34)),)),
                Template(name="MMDetection_YOLOX", task="detection", base="",
                         render="mytemplates.render:render", description="a clash",
                         hyperparameters=())]
    """))
    (package / "render.py").write_text(textwrap.dedent("""
        def render(ctx):
            ctx.cfg.model.backbone.depth = ctx.hp["depth"]
            ctx.cfg.model.bbox_head.num_classes = ctx.data.num_classes
    """))
    dist = site / "mytemplates-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mytemplates\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[cplugins]\nmytemplates = mytemplates.plugin\n")
    code = textwrap.dedent("""
        from cplugins.cli import main
        print("RC", main(["templates"]))
        from cplugins.templates import render
        cfg = render("My_RetinaNet18", {"depth": 34})
        print("DEPTH", cfg.model.backbone.depth, cfg.template["name"])
    """)
    result = run_python(code, site)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^My_RetinaNet18\s+detection\s+mmdet::retinanet/retinanet_r18_fpn_1x_coco"
                     r"\.py\s+-\s+mytemplates \(mytemplates 0\.1\)$", result.stdout, re.M)
    assert ("CONFLICT: template detection/MMDetection_YOLOX is provided by two distributions: "
            "cplugins 0.1.0 and mytemplates 0.1") in result.stdout
    assert "RC 1" in result.stdout
    assert "DEPTH 34 detection/My_RetinaNet18" in result.stdout



def test_template_runs_log_where_the_config_is_not_the_whole_config(tmp_path):
    """The runner's Config dump of a rendered template (358 lines for SegFormer) and its
    per-parameter paramwise_options lines shrink to one line each; other configs are kept."""
    from mmengine.logging import MMLogger, print_log

    import cplugins.templates.runtime  # noqa: F401  (what a rendered config imports)

    logger = MMLogger.get_instance("template-log-test", log_file=str(tmp_path / "run.log"))
    text = render("MMSegmentation_SegFormer").pretty_text
    logger.info(f"Config:\n{text}")
    for index in range(3):
        print_log(f"paramwise_options -- backbone.layers.{index}.norm.weight:decay_mult=0.0",
                  logger="current")
    logger.info("Config:\nmodel = dict(type='Mine')")
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert [line.split(" - INFO - ")[1] for line in lines[:3]] == [
        f"Config: template segmentation/MMSegmentation_SegFormer, {len(text.splitlines()) + 1} "
        "lines: see MMSegmentation_SegFormer.py in the work dir (or `cplugins render`)",
        "paramwise_options: per-parameter multipliers of optim_wrapper.paramwise_cfg applied "
        "(not listed one by one)",
        "Config:"]
    assert lines[3:] == ["model = dict(type='Mine')"]


# --- cplugins' own modules that rendered configs use ------------------------------------------
def _bce(x: float, y: float) -> float:
    return math.log1p(math.exp(x)) - x * y


def test_ohem_loss_keeps_the_positives_and_the_hardest_negatives():
    import torch

    from cplugins.templates.losses import OHEMLoss

    logits = [[2.0, -1.0], [0.0, 0.0], [3.0, 3.0], [-4.0, -4.0], [1.0, -2.0], [5.0, 0.0]]
    pred = torch.tensor(logits, requires_grad=True)
    target = torch.tensor([0, 1, 2, 2, 2, 2])  # 2 classes: label 2 is background
    weight = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])  # the last anchor is ignored
    per_anchor = [sum(_bce(x, float(t == c)) for c, x in enumerate(row))
                  for row, t in zip(logits, target.tolist())]
    # one negative per positive: of anchors 2, 3, 4 the two hardest (2 and 4) count
    loss = OHEMLoss(neg_pos_ratio=1.0)(pred, target, weight, avg_factor=2)
    expected = (per_anchor[0] + per_anchor[1] + per_anchor[2] + per_anchor[4]) / 2
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    loss.backward()
    assert pred.grad[3].abs().sum() == 0 and pred.grad[5].abs().sum() == 0
    assert pred.grad[4].abs().sum() > 0
    # three per positive: every valid negative counts
    everything = OHEMLoss(neg_pos_ratio=3.0, loss_weight=2.0)(pred, target, weight, avg_factor=2)
    assert math.isclose(everything.item(), 2 * sum(per_anchor[:5]) / 2, rel_tol=1e-6)
    kept = OHEMLoss(neg_pos_ratio=1.0, reduction="none")(pred, target, weight, avg_factor=2)
    assert kept[3].item() == 0 and kept[5].item() == 0
    assert math.isclose(kept[2].item(), per_anchor[2], rel_tol=1e-6)
    with pytest.raises(ValueError, match="neg_pos_ratio must be > 0, got 0"):
        OHEMLoss(neg_pos_ratio=0)
    with pytest.raises(ValueError, match=r"use_sigmoid must be True \(sigmoid outputs\), got "
                                         r"False"):
        OHEMLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match="reduction='avg'; allowed: none, mean, sum"):
        OHEMLoss(reduction="avg")


def test_min_samples_dataset_repeats_a_small_dataset(tmp_path):
    from mmpretrain.datasets import CustomDataset

    from cplugins.shapes import make_shapes_classification
    from cplugins.templates.datasets import MinSamplesDataset

    root = make_shapes_classification(tmp_path / "cls", num_train=4, num_val=3,
                                      image_size=32)["data_root"]
    base = CustomDataset(data_root=root, data_prefix="train", pipeline=[])
    repeated = MinSamplesDataset(base, min_samples=10)
    assert (len(base), repeated.times, len(repeated)) == (4, 3, 12)
    assert repeated[5]["img_path"] == base[1]["img_path"]
    assert len(MinSamplesDataset(base, min_samples=3)) == 4
    with pytest.raises(ValueError, match="min_samples must be an integer >= 1, got 0"):
        MinSamplesDataset(base, min_samples=0)
