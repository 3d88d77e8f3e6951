"""The demo: train a config with ``tools/train.py``, then draw what it learned.

    python tools/demo.py [CONFIG] [--work-dir DIR] [--images N] [--cfg-options k=v ...]
    python tools/demo.py --draw-only --work-dir DIR      # pictures of a finished training

Training goes through ``tools/train.py``'s ``main`` (same checks, plugins and safeguards).
Afterwards, under ``WORK_DIR/demo/``:

* ``val_<image>.png``: for the first N validation images, ground truth (left) and predictions
  with score >= ``--score-thr`` (right), side by side, drawn by mmdet's ``DetLocalVisualizer``;
* ``training_curve.png``: training loss and validation bbox mAP over iterations, read from
  mmengine's ``vis_data/scalars.json`` of the run.

It prints the last validation bbox mAP, the wall time and where the pictures are.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import cplugins.compat  # noqa: E402

cplugins.compat.apply()  # this repository's tools opt in to the compatibility fixes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = "configs/augfpn/fcos_r18-w32_augfpn_600i_shapes-easy128.py"
MAP_KEY = "coco/bbox_mAP"


@dataclass
class Curve:
    """Series read from ``scalars.json``: (iteration, value) pairs."""

    loss: list[tuple[int, float]]
    mAP: list[tuple[int, float]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the demo and draw what it learned")
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                        help=f"config to train (default: {DEFAULT_CONFIG})")
    parser.add_argument("--work-dir", default="work_dirs/demo")
    parser.add_argument("--images", type=int, default=4,
                        help="validation images drawn (ground truth | predictions)")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="predictions drawn have at least this score (default 0.3, "
                             "mmdet's)")
    parser.add_argument("--scale", type=int, default=3,
                        help="the pictures are drawn this many times larger than the images")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="passed to tools/train.py")
    parser.add_argument("--draw-only", action="store_true",
                        help="no training: draw the finished run in --work-dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    if args.images < 0:
        parser.error(f"--images must be >= 0, got {args.images}")
    if args.scale < 1:
        parser.error(f"--scale must be >= 1, got {args.scale}")
    if not 0 <= args.score_thr <= 1:
        parser.error(f"--score-thr must be in [0, 1], got {args.score_thr}")
    return args


def latest_scalars(work_dir: str) -> str:
    """``WORK_DIR/<timestamp>/vis_data/scalars.json`` of the latest run that wrote one."""
    found = sorted(glob.glob(osp.join(work_dir, "*", "vis_data", "scalars.json")))
    if not found:
        raise SystemExit(f"error: no */vis_data/scalars.json in {work_dir}: nothing was trained "
                         "there (run without --draw-only)")
    return found[-1]


def read_curve(scalars_path: str) -> Curve:
    """Training ``loss`` and validation ``coco/bbox_mAP`` per iteration (``step``).

    A validation logged by epoch (``LoggerHook(log_metric_by_epoch=True)``, mmengine's
    default: step 0 in an iteration-based run) is placed at the last training iteration logged
    before it.
    """
    loss: list[tuple[int, float]] = []
    mAP: list[tuple[int, float]] = []
    with open(scalars_path) as f:
        for line in f:
            entry = json.loads(line)
            if "loss" in entry:
                loss.append((int(entry["step"]), float(entry["loss"])))
            if MAP_KEY in entry:
                step = int(entry["step"])
                if loss and step < loss[-1][0]:
                    step = loss[-1][0]
                mAP.append((step, float(entry[MAP_KEY])))
    return Curve(loss, mAP)


def draw_curve(curve: Curve, out_file: str) -> None:
    """Loss (left axis) and bbox mAP (right axis) over iterations; an 800x400 px PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, loss_ax = plt.subplots(figsize=(8, 4), dpi=100)
    if curve.loss:
        loss_ax.plot(*zip(*curve.loss), color="tab:blue", label="training loss")
    loss_ax.set_xlabel("iteration")
    loss_ax.set_ylabel("training loss", color="tab:blue")
    map_ax = loss_ax.twinx()
    if curve.mAP:
        map_ax.plot(*zip(*curve.mAP), "o-", color="tab:red", label="validation bbox mAP")
    map_ax.set_ylabel("validation bbox mAP", color="tab:red")
    map_ax.set_ylim(0, 1)
    loss_ax.set_title("loss and bbox mAP (COCO mAP@[.5:.95]) over iterations")
    fig.tight_layout()
    fig.savefig(out_file)
    plt.close(fig)


def _checkpoint(work_dir: str) -> str:
    last = osp.join(work_dir, "last_checkpoint")
    if not osp.isfile(last):
        raise SystemExit(f"error: no last_checkpoint in {work_dir}: nothing was trained there")
    with open(last) as f:
        return f.read().strip()


def saved_config(work_dir: str, config: str | None = None) -> str:
    """The config a training saved in ``work_dir``: ``config``'s name there, else the newest."""
    if config is not None and osp.isfile(osp.join(work_dir, osp.basename(config))):
        return osp.join(work_dir, osp.basename(config))
    found = glob.glob(osp.join(work_dir, "*.py"))
    if not found:
        raise SystemExit(f"error: no saved config in {work_dir}")
    return max(found, key=osp.getmtime)


def contrasting_colour(image) -> tuple[int, int, int]:
    """White boxes on a dark image, black on a light one (the mean luma of its border pixels,
    the background of the shapes images): class colours such as crimson vanish on a red
    background."""
    import numpy as np

    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float64)
    luma = float((border[:, :3] @ np.array([0.299, 0.587, 0.114])).mean())
    return (0, 0, 0) if luma >= 128 else (255, 255, 255)


def draw_predictions(work_dir: str, num_images: int, score_thr: float,
                     scale: int = 1, config: str | None = None) -> list[str]:
    """Ground truth | predictions of the first ``num_images`` validation images (PNG files of
    ``scale * H`` x ``2 * scale * W`` pixels).

    Uses the config and checkpoint the training saved in ``work_dir``; the ground truth is the
    dataset's annotation in original image coordinates, like the predictions.
    """
    import common  # noqa: F401  (cplugins.all first: plugins and compat fixes)
    import mmcv
    import numpy as np
    import torch
    from mmdet.apis import init_detector
    from mmdet.registry import DATASETS
    from mmdet.structures import DetDataSample
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    from cplugins.training.prepare import prepare_for_training

    cfg = prepare_for_training(saved_config(work_dir, config), work_dir=work_dir, purpose="test",
                               progress=False)
    init_default_scope("mmdet")
    model = init_detector(cfg, _checkpoint(work_dir), device="cpu")
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    visualizer = DetLocalVisualizer.get_instance("cplugins-demo")
    visualizer.dataset_meta = model.dataset_meta
    out_dir = osp.join(work_dir, "demo")
    written = []
    for i in range(min(num_images, len(dataset))):
        info = dataset.get_data_info(i)
        with torch.no_grad():
            sample: DetDataSample = model.test_step(pseudo_collate([dataset[i]]))[0]
        instances = info["instances"]
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(np.array([x["bbox"] for x in instances], np.float32)
                                .reshape(-1, 4)),
            labels=torch.tensor([x["bbox_label"] for x in instances], dtype=torch.long))
        image = mmcv.imread(info["img_path"], channel_order="rgb")
        if scale != 1:  # nearest: the pixels stay visible as they are
            image = mmcv.imrescale(image, scale, interpolation="nearest")
            sample.gt_instances.bboxes *= scale
            sample.pred_instances.bboxes *= scale
        out_file = osp.join(out_dir, f"val_{osp.splitext(osp.basename(info['img_path']))[0]}.png")
        visualizer.bbox_color = contrasting_colour(image)
        visualizer.add_datasample(osp.basename(out_file), image, sample, draw_gt=True,
                                  draw_pred=True, show=False, out_file=out_file,
                                  pred_score_thr=score_thr)
        written.append(out_file)
    return written


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    start = time.time()
    if not args.draw_only:
        import train

        train_argv = [args.config, "--work-dir", args.work_dir]
        if args.cfg_options:
            train_argv += ["--cfg-options", *args.cfg_options]
        if args.no_progress:
            train_argv.append("--no-progress")
        train.main(train_argv)
    train_s = time.time() - start
    curve = read_curve(latest_scalars(args.work_dir))
    out_dir = osp.join(args.work_dir, "demo")
    curve_file = osp.join(out_dir, "training_curve.png")
    os.makedirs(out_dir, exist_ok=True)
    draw_curve(curve, curve_file)
    pictures = draw_predictions(args.work_dir, args.images, args.score_thr, args.scale,
                                None if args.draw_only else args.config)
    total_s = time.time() - start
    final = curve.mAP[-1] if curve.mAP else None
    print()
    if final is None:
        print("no validation ran: no bbox mAP to report")
    else:
        print(f"bbox mAP (COCO mAP@[.5:.95], held-out validation images) at iteration "
              f"{final[0]}: {final[1]:.3f}")
    if not args.draw_only:
        print(f"training + validation: {train_s / 60:.1f} min; with the pictures: "
              f"{total_s / 60:.1f} min")
    print(f"training curve: {curve_file}")
    print(f"ground truth | predictions (score >= {args.score_thr}), {len(pictures)} validation "
          f"images: {out_dir}/val_*.png")
    return {"curve": curve, "curve_file": curve_file, "pictures": pictures,
            "mAP": None if final is None else final[1]}


if __name__ == "__main__":
    main()
