"""The model zoo (cplugins_augfpn/configs): every config differs from mmdet's config of the same
detector only by AugFPN, builds at full size, trains two iterations and is evaluated at toy
size; a fine-tuning run loads a stock FPN checkpoint; the README table is the metafile's.

Toy size: the configs' models with a ResNet-18 backbone (``--cfg-options``-style overrides via
``Config.merge_from_dict``), 3 classes and fewer proposals, on 96x128 shapes images (with
masks for the mask models). About a minute on a quiet 2-core CPU (slow).
"""
from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import cplugins_augfpn  # noqa: F401  (imports cplugins first, registers the modules)
import pytest
import torch
from cplugins_augfpn import configs as zoo
from helpers import run_python

REPO = Path(__file__).resolve().parents[3]

#: config -> (mmdet config it inherits, detector, RoI extractor types (box, mask), CS)
ZOO = {
    "faster-rcnn_r50_augfpn_1x_coco": (
        "faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py", "CSTwoStageDetector",
        ("SoftRoIExtractor", None), True),
    "faster-rcnn_r101_augfpn_1x_coco": (
        "faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py", "CSTwoStageDetector",
        ("SoftRoIExtractor", None), True),
    "faster-rcnn_x101-32x4d_augfpn_1x_coco": (
        "faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py", "CSTwoStageDetector",
        ("SoftRoIExtractor", None), True),
    "faster-rcnn_x101-64x4d_augfpn_1x_coco": (
        "faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py", "CSTwoStageDetector",
        ("SoftRoIExtractor", None), True),
    "mask-rcnn_r50_augfpn_1x_coco": (
        "mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py", "CSTwoStageDetector",
        ("SoftRoIExtractor", "SoftRoIExtractor"), True),
    "mask-rcnn_r101_augfpn_1x_coco": (
        "mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py", "CSTwoStageDetector",
        ("SoftRoIExtractor", "SoftRoIExtractor"), True),
    "retinanet_r50_augfpn_1x_coco": (
        "retinanet/retinanet_r50_fpn_1x_coco.py", "CSSingleStageDetector", None, True),
    "fcos_r50-caffe_augfpn_gn-head_1x_coco": (
        "fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py", "CSSingleStageDetector", None, True),
    "cascade-mask-rcnn_r50_augfpn-rfa_autoaug_10e_cityscapes": (
        None, "CascadeRCNN", ("SingleRoIExtractor", "SingleRoIExtractor"), False),
    "cascade-mask-rcnn_r50_augfpn_autoaug_10e_cityscapes": (
        None, "CSTwoStageDetector", ("SoftRoIExtractor", "SoftRoIExtractor"), True),
}
#: the only settings a COCO zoo config may change in the mmdet config it inherits
AUGFPN_KEYS = {
    "custom_imports.imports", "custom_imports.allow_failed_imports", "model.type",
    "model.neck.type", "model.neck.pool_ratios",
    "model.aux_loss_weight", "model.roi_head.type", "model.roi_head.aux_loss_weight",
    "model.roi_head.bbox_roi_extractor.type", "model.roi_head.mask_roi_extractor.type",
}
NUM_CLASSES = 3
pytestmark = pytest.mark.slow


def test_the_zoo_lists_every_config():
    assert zoo.config_names() == sorted(ZOO)


def mmdet_train_py(*args: str) -> list[str]:
    """Python arguments running mmdet's own tools/train.py (unchanged) with ``args``, after
    opting in to cplugins' compatibility fixes, which this environment's torch / torchvision
    need (``cplugins doctor``): a script opts in before it imports the OpenMMLab stack."""
    import mmdet

    train_py = str(Path(mmdet.__file__).parent / ".mim" / "tools" / "train.py")
    return ["-c", "import runpy, sys, cplugins.compat; cplugins.compat.apply(); "
                  f"sys.argv = {[train_py, *args]!r}; "
                  "runpy.run_path(sys.argv[0], run_name='__main__')"]


def test_cplugins_configs_lists_the_zoo_and_names_one():
    result = run_python("", args=["-m", "cplugins.cli", "configs", "augfpn"])
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "cplugins-augfpn 0.1.0"
    assert [line.split()[0] for line in lines[1:]] == sorted(ZOO)
    assert [line.split()[1] for line in lines[1:]] == zoo.config_paths()

    name = "mask-rcnn_r50_augfpn_1x_coco"
    result = run_python("", args=["-m", "cplugins.cli", "configs", "--path", name])
    assert (result.returncode, result.stdout.strip()) == (0, zoo.config_path(name))
    result = run_python("", args=["-m", "cplugins.cli", "configs", "--path", "mask-rcnn_r50"])
    assert result.returncode == 1 and result.stderr.startswith(
        "error: no plugin ships a config 'mask-rcnn_r50'; configs: "), result.stderr
    result = run_python("", args=["-m", "cplugins.cli", "configs", "no-such-plugin"])
    assert result.returncode == 1
    assert "error: no installed plugin 'no-such-plugin'; installed: " in result.stderr
    with pytest.raises(ValueError, match="ships no config 'faster-rcnn_r50_augfpn_1x'. Did "
                                         "you mean 'faster-rcnn_r50_augfpn_1x_coco'?"):
        zoo.config_path("faster-rcnn_r50_augfpn_1x")


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


@pytest.mark.parametrize("name", [n for n, spec in ZOO.items() if spec[0] is not None])
def test_coco_config_changes_only_what_augfpn_changes(name):
    """Against mmdet's config of the same detector, only the AugFPN settings differ."""
    from mmengine.config import Config

    ours = _flat(Config.fromfile(zoo.config_path(name)).to_dict())
    stock = _flat(Config.fromstring(f"_base_ = 'mmdet::{ZOO[name][0]}'", ".py").to_dict())
    changed = {k for k in ours.keys() | stock.keys() if ours.get(k) != stock.get(k)}
    assert changed and changed <= AUGFPN_KEYS, sorted(changed - AUGFPN_KEYS)


def toy_options(model, num_classes: int | None = NUM_CLASSES) -> dict:
    """``--cfg-options``-style overrides shrinking ``model`` (a config's model) to toy size:
    ResNet-18, ``num_classes`` classes (None: as configured), fewer proposals and sampled RoIs,
    every score kept (an untrained model has results to evaluate)."""
    backbone = model.backbone
    options = {"model.neck.in_channels": [64, 128, 256, 512]}
    if backbone.type == "ResNeXt":  # no 18-layer ResNeXt
        options["model.backbone"] = dict(
            _delete_=True, type="ResNet", depth=18, out_indices=(0, 1, 2, 3), frozen_stages=1,
            norm_cfg=backbone.norm_cfg, style=backbone.style, init_cfg=None)
    else:
        options.update({"model.backbone.depth": 18, "model.backbone.init_cfg": None})
    if "roi_head" not in model:
        if num_classes is not None:
            options["model.bbox_head.num_classes"] = num_classes
        options.update({"model.test_cfg.nms_pre": 200, "model.test_cfg.max_per_img": 20,
                        "model.test_cfg.score_thr": 0.0})
        return options
    options.update({"model.train_cfg.rpn_proposal.nms_pre": 200,
                    "model.train_cfg.rpn_proposal.max_per_img": 64,
                    "model.test_cfg.rpn.nms_pre": 200, "model.test_cfg.rpn.max_per_img": 32,
                    "model.test_cfg.rcnn.score_thr": 0.0})
    head = model.roi_head
    for key in ("bbox_head", "mask_head") if num_classes is not None else ():
        value = head.get(key)
        if isinstance(value, list):  # cascade: one per stage
            for i in range(len(value)):
                options[f"model.roi_head.{key}.{i}.num_classes"] = num_classes
        elif value is not None:
            options[f"model.roi_head.{key}.num_classes"] = num_classes
    rcnn = model.train_cfg.rcnn
    for i in range(len(rcnn)) if isinstance(rcnn, list) else [None]:
        key = "model.train_cfg.rcnn" + ("" if i is None else f".{i}")
        options[f"{key}.sampler.num"] = 32
    return options


def _build(model_cfg, seed: int = 0) -> torch.nn.Module:
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    torch.manual_seed(seed)
    return MODELS.build(copy.deepcopy(model_cfg))


@pytest.fixture(scope="module")
def shapes_with_masks(tmp_path_factory) -> dict:
    """Packed train / val items of a tiny shapes set with masks, and its val annotations."""
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope

    from cplugins.shapes import make_shapes_detection

    data = make_shapes_detection(tmp_path_factory.mktemp("zoo_shapes"), num_train=2,
                                 num_val=2, image_size=(96, 128), seed=5, min_objects=2,
                                 max_objects=3)
    init_default_scope("mmdet")
    pipeline = [dict(type="LoadImageFromFile"),
                dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
                dict(type="Resize", scale=(128, 96), keep_ratio=True),
                dict(type="PackDetInputs")]
    items = {"val_ann_file": str(Path(data["val"]["data_root"]) / data["val"]["ann_file"])}
    for split in ("train", "val"):
        dataset = CocoDataset(**data[split], pipeline=pipeline, test_mode=split == "val")
        items[split] = [dataset[i] for i in range(len(dataset))]
        items["metainfo"] = dataset.metainfo
    return items


@pytest.mark.parametrize("name", list(ZOO))
def test_config_builds_full_size_trains_and_evaluates_at_toy_size(name, shapes_with_masks):
    from mmdet.evaluation import CocoMetric
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    _, detector, extractors, cs = ZOO[name]
    cfg = Config.fromfile(zoo.config_path(name))
    full = copy.deepcopy(cfg.model)
    full.backbone.init_cfg = None  # no download; the architecture as configured
    model = _build(full)
    assert (type(model).__name__, type(model.neck).__name__) == (detector, "AugFPN")
    assert sum(p.numel() for p in model.neck.rfa.parameters()) > 0  # RFA at full width

    cfg.merge_from_dict(toy_options(cfg.model), allow_list_keys=True)
    model = _build(cfg.model)
    model.init_weights()
    if extractors is not None:
        box = model.roi_head.bbox_roi_extractor
        box = box[0] if isinstance(box, torch.nn.ModuleList) else box
        mask = getattr(model.roi_head, "mask_roi_extractor", None)
        mask = mask[0] if isinstance(mask, torch.nn.ModuleList) else mask
        assert (type(box).__name__, mask and type(mask).__name__) == extractors
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    for _ in range(2):
        log = model.train_step(pseudo_collate(copy.deepcopy(shapes_with_masks["train"])),
                               wrapper)
        assert torch.isfinite(log["loss"])
    assert any("aux_loss" in k for k in log) == cs, sorted(log)
    masks = "mask_head" in cfg.model.get("roi_head", {})
    assert any("loss_mask" in k for k in log) == masks

    model.eval()
    metric = CocoMetric(ann_file=shapes_with_masks["val_ann_file"],
                        metric=["bbox", "segm"] if masks else ["bbox"])
    metric.dataset_meta = shapes_with_masks["metainfo"]
    with torch.no_grad():
        batch = pseudo_collate(copy.deepcopy(shapes_with_masks["val"]))
        results = model.test_step(batch)
    metric.process(batch, [r.to_dict() for r in results])
    scores = metric.evaluate(len(results))
    assert 0 <= scores["coco/bbox_mAP"] <= 1
    if masks:
        assert 0 <= scores["coco/segm_mAP"] <= 1
        assert all(r.pred_instances.masks.shape[-2:] == (96, 128) for r in results)


def test_readme_table_is_the_metafile_table():
    readme = zoo.README.read_text(encoding="utf-8")
    assert zoo.readme_with_table(readme, zoo.readme_table()) == readme, (
        "README.md is stale: run python -m cplugins_augfpn.configs --write")
    meta = zoo.load_metafile()
    assert sorted(m["Name"] for m in meta["Models"]) == sorted(ZOO)
    for model in meta["Models"]:
        assert Path(zoo.CONFIG_DIR.parent, model["Config"]).is_file(), model["Config"]
        assert model["In Collection"] == "AugFPN" and model["Weights"] is None


def cli_options(options: dict) -> list[str]:
    """``options`` as ``--cfg-options`` arguments (``KEY=VALUE``, Python literals)."""
    return [f"{k}={json.dumps(v).replace(' ', '')}".replace("null", "None")
            for k, v in options.items()]


def test_fine_tunes_from_a_stock_fpn_checkpoint(tmp_path, shapes_data):
    """A user's config inherits the R50 config by name and loads a stock Faster R-CNN FPN
    checkpoint (``load_from``); the repository's tools/train.py trains one epoch at lr 0, so the
    checkpoint it writes holds the weights the training used: every stock weight as loaded
    (backbone, FPN convs, heads), and the AugFPN additions, which the FPN has not."""
    from mmengine.config import Config

    name = "faster-rcnn_r50_augfpn_1x_coco"
    options = toy_options(Config.fromfile(zoo.config_path(name)).model)
    stock = Config.fromstring("_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'",
                              ".py")
    stock.merge_from_dict(options)
    fpn = _build(stock.model, seed=1)
    fpn.init_weights()
    checkpoint = tmp_path / "fpn.pth"
    torch.save({"state_dict": fpn.state_dict(), "meta": {}}, checkpoint)

    config = tmp_path / "finetune.py"
    config.write_text(textwrap.dedent(f"""
        _base_ = __import__('cplugins_augfpn.configs').configs.config_path({name!r})
        load_from = {str(checkpoint)!r}
        pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                    dict(type='Resize', scale=(128, 96), keep_ratio=True),
                    dict(type='PackDetInputs')]
        train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                                dataset=dict(**{shapes_data['train']!r}, pipeline=pipeline))
        optim_wrapper = dict(optimizer=dict(lr=0.0))  # the weights stay as training used them
        train_cfg = dict(max_epochs=1, val_interval=10)
        val_dataloader = val_cfg = val_evaluator = None
        test_dataloader = test_cfg = test_evaluator = None
        default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
    """))
    work_dir = tmp_path / "work"
    result = run_python("", args=[str(REPO / "tools" / "train.py"), str(config), "--work-dir",
                                  str(work_dir), "--no-progress", "--cfg-options",
                                  *cli_options(options)],
                        env={"OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    loaded = torch.load(checkpoint, map_location="cpu")["state_dict"]
    trained = torch.load(work_dir / "epoch_1.pth", map_location="cpu",
                         weights_only=False)["state_dict"]
    assert loaded.keys() <= trained.keys()
    changed = [k for k in loaded if not torch.equal(trained[k], loaded[k])]
    assert not changed, changed[:5]  # every stock weight was loaded and used
    new = {k.split(".")[1] for k in trained.keys() - loaded.keys()}
    assert {"rfa", "aux_bbox_head", "bbox_roi_extractor"} <= new, new  # AugFPN's own
    assert '"loss"' in next(work_dir.glob("*/vis_data/scalars.json")).read_text()  # trained


def test_cityscapes_tutorial_by_name_with_mmdets_own_train_py(tmp_path):
    """A user's config inherits the ported tutorial by name (the zoo README's ``_base_``
    line) and mmdet's own tools/train.py trains it 2 iterations on a generated Cityscapes set
    (AutoAugment on), then validates with COCO bbox/segm AP and CityScapesMetric."""
    pytest.importorskip("cityscapesscripts")
    from mmengine.config import Config

    from cplugins.data.cityscapes import make_cityscapes

    name = "cascade-mask-rcnn_r50_augfpn-rfa_autoaug_10e_cityscapes"
    data = make_cityscapes(tmp_path / "cityscapes", num_train=2, num_val=1,
                           image_size=(128, 256), seed=2, min_objects=2, max_objects=3)
    root = data["data_root"] + "/"
    config = tmp_path / "my_cityscapes.py"
    config.write_text(textwrap.dedent(f"""
        _base_ = __import__('cplugins_augfpn.configs').configs.config_path({name!r})
        data_root = {root!r}
        load_from = None  # the tutorial's COCO checkpoint cannot be downloaded here
        train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
            times=1, dataset=dict(data_root=data_root)))
        val_dataloader = dict(num_workers=0, persistent_workers=False,
                              dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        val_evaluator = [
            dict(type='CocoMetric', metric=['bbox', 'segm'],
                 ann_file=data_root + {data['val_ann_file']!r}),
            dict(type='CityScapesMetric', seg_prefix={data['val_seg_prefix']!r},
                 outfile_prefix={str(tmp_path / 'cs_eval')!r})]
        test_evaluator = val_evaluator
        train_cfg = dict(max_epochs=1, val_interval=1)
        default_hooks = dict(logger=dict(interval=1))
    """))
    cfg = Config.fromfile(str(config))
    options = toy_options(cfg.model, num_classes=None)  # the 8 Cityscapes classes
    resize = [i for i, t in enumerate(cfg.train_pipeline) if t.type == "RandomResize"][0]
    assert cfg.train_dataloader.dataset.dataset.pipeline[2].type == "AutoAugment"
    cli = cli_options({k: v for k, v in options.items() if k != "model.backbone"})
    cli += [f"train_dataloader.dataset.dataset.pipeline.{resize}.scale=[(256,100),(256,128)]",
            "val_dataloader.dataset.pipeline.1.scale=(256,128)"]
    work_dir = tmp_path / "work"
    result = run_python("", args=mmdet_train_py(str(config), "--work-dir", str(work_dir),
                                                "--cfg-options", *cli),
                        env={"OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    scalars = next(work_dir.glob("*/vis_data/scalars.json"))
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert any("loss_mask" in "".join(r) for r in records)  # the cascade's mask heads train
    final = records[-1]
    for key in ("coco/bbox_mAP", "coco/segm_mAP", "cityscapes/mAP"):
        assert 0 <= final[key] <= 1, final
