"""Find bad training data before training: ``cplugins data check PATH``, and ``tools/train.py``.

Checks (each problem is counted, the first examples are shown; errors stop training, warnings
are printed):

- images: missing, unreadable or truncated files (fully decoded with Pillow; ``sample=N``
  decodes N of them, chosen reproducibly, for very large sets), size unlike the annotation;
- COCO annotations: no images, no annotations, annotations of unknown image or category
  ids, malformed or degenerate boxes (width or height <= 0), boxes entirely outside their
  image (errors); boxes partly outside or under 1 px, images without boxes, categories with
  no instances, categories the config's ``classes`` leave out (warnings: mmdet drops these
  without a word);
- Cityscapes (mmdet's ``CityscapesDataset``): its COCO json as above and, when the config
  evaluates with ``CityScapesMetric``, the ``gtFine/*_instanceIds.png`` of every validation
  image (the metric reads them only after a whole epoch);
- image folders (classification) and ``img_dir``/``ann_dir`` sets (segmentation): every
  image and mask readable, classes with no images.

Datasets it cannot check (other annotation formats, remote storage) are named in one line.
"""
from __future__ import annotations

import glob
import json
import math
import os
import os.path as osp
import random
from collections import Counter
from dataclasses import dataclass, field

ERROR, WARNING = "error", "warning"
_EXAMPLES = 3


@dataclass
class Finding:
    severity: str
    what: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class DataReport:
    """The problems found in one annotation file or image folder."""

    source: str
    findings: dict[str, Finding] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def add(self, severity: str, what: str, example: str) -> None:
        finding = self.findings.setdefault(what, Finding(severity, what))
        finding.count += 1
        if len(finding.examples) < _EXAMPLES:
            finding.examples.append(example)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.severity == WARNING]

    def format(self) -> str:
        stats = ", ".join(f"{v} {k}" for k, v in self.stats.items())
        errors, warnings = (sum(f.count for f in kind) for kind in (self.errors, self.warnings))
        lines = [f"{self.source}: {stats}; {errors or 'no'} errors, {warnings} warnings"]
        for finding in sorted(self.findings.values(), key=lambda f: f.severity != ERROR):
            lines.append(f"  {finding.severity}: {finding.count} {finding.what}: "
                         + "; ".join(finding.examples)
                         + (", ..." if finding.count > len(finding.examples) else ""))
        return "\n".join(lines)


class DataCheckError(ValueError):
    """The data check found errors; the message is the full report."""


def _image_problem(path: str) -> str | None:
    """None when ``path`` decodes completely, else what is wrong with it."""
    from PIL import Image

    if osp.getsize(path) == 0:
        return "empty (0 bytes)"
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return None


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size  # (width, height)


def _sampled(items: list, sample: int | None) -> list:
    if sample is None or sample >= len(items):
        return items
    return random.Random(0).sample(items, sample)


def check_images(report: DataReport, paths: list[str], root: str,
                 sample: int | None = None) -> list[str]:
    """Every path must exist; (a sample of) them must decode. Returns the decoded ones."""
    present = []
    for path in paths:
        if osp.isfile(path):
            present.append(path)
        else:
            report.add(ERROR, "missing image files", osp.relpath(path, root))
    chosen = _sampled(present, sample)
    report.stats["images opened"] = len(chosen)
    good = []
    for path in chosen:
        problem = _image_problem(path)
        if problem:
            report.add(ERROR, "unreadable or truncated images",
                       f"{osp.relpath(path, root)} {problem}")
        else:
            good.append(path)
    return good


def _box_problem(box, width: float | None, height: float | None) -> tuple[str, str] | None:
    if (not isinstance(box, list | tuple) or len(box) != 4
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in box)):
        return ERROR, "malformed boxes (not 4 finite numbers [x, y, w, h])"
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return ERROR, "degenerate boxes (width or height <= 0)"
    if width and height:
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            return ERROR, "boxes entirely outside their image"
        if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
            return WARNING, "boxes partly outside their image"
    if w < 1 or h < 1:
        return WARNING, "boxes under 1 px wide or high (mmdet drops them)"
    return None


def check_coco(ann_file: str, image_root: str, classes: list[str] | tuple | None = None,
               sample: int | None = None) -> DataReport:
    """Check a COCO annotation file and the images it names (relative to ``image_root``)."""
    report = DataReport(f"{ann_file} (images in {image_root})")
    try:
        with open(ann_file) as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        report.add(ERROR, "unreadable annotation files", f"{ann_file}: {exc}")
        return report
    if not isinstance(content, dict) or not isinstance(content.get("images"), list):
        report.add(ERROR, "files that are not COCO annotations (no 'images' list)", ann_file)
        return report
    images = content["images"]
    annotations = content.get("annotations") or []
    categories = {c.get("id"): c.get("name") for c in content.get("categories") or []}
    report.stats.update(images=len(images), boxes=len(annotations), categories=len(categories))
    if not images:
        report.add(ERROR, "annotation files without images", ann_file)
    if not annotations:
        report.add(ERROR, "empty annotation sets (no annotations at all)", ann_file)
    if not categories:
        report.add(ERROR, "annotation files without categories", ann_file)

    by_id: dict = {}
    for image in images:
        if image.get("id") in by_id:
            report.add(ERROR, "duplicate image ids", str(image.get("id")))
        by_id[image.get("id")] = image
    used = set()
    if classes is not None:
        known_names = set(categories.values())
        for name in classes:
            if name not in known_names:
                report.add(ERROR, "config classes with no category in the annotations", name)
        left_out = {cid for cid, name in categories.items() if name not in set(classes)}
    else:
        left_out = set()
    instances: Counter = Counter()
    for ann in annotations:
        image = by_id.get(ann.get("image_id"))
        label = f"annotation {ann.get('id')} (image {ann.get('image_id')})"
        if image is None:
            report.add(ERROR, "annotations of unknown image ids", label)
            continue
        used.add(ann.get("image_id"))
        category = ann.get("category_id")
        if category not in categories:
            report.add(ERROR, "annotations of unknown category ids",
                       f"{label} category_id {category}")
            continue
        if category in left_out:
            report.add(WARNING, "annotations of categories the config's classes leave out "
                                "(mmdet ignores them)", f"{label} {categories[category]}")
            continue
        instances[category] += 1
        if ann.get("iscrowd"):
            continue
        problem = _box_problem(ann.get("bbox"), image.get("width"), image.get("height"))
        if problem:
            report.add(problem[0], problem[1], f"{label} {ann.get('bbox')}")
    for cid, name in categories.items():
        if cid not in left_out and not instances[cid] and annotations:
            report.add(WARNING, "categories with no instances", f"{name} (id {cid})")
    for image in images:
        if image.get("id") not in used and annotations:
            report.add(WARNING, "images without annotations (filter_empty_gt skips them in "
                                "training)", str(image.get("file_name")))

    paths = {osp.join(image_root, str(image.get("file_name"))): image for image in images}
    for path in check_images(report, list(paths), image_root, sample):
        image = paths[path]
        if image.get("width") and image.get("height"):
            size = _image_size(path)
            if size != (image["width"], image["height"]):
                report.add(WARNING, "images whose size differs from the annotation",
                           f"{image.get('file_name')} {size[0]}x{size[1]} vs "
                           f"{image['width']}x{image['height']}")
    return report


def _files(folder: str) -> list[str]:
    return sorted(osp.join(root, name) for root, _, names in os.walk(folder) for name in names
                  if not name.startswith("."))


def check_image_folder(folder: str, sample: int | None = None) -> DataReport:
    """Classification layout: ``folder/<class>/<image>``; every image readable."""
    report = DataReport(folder)
    classes = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
    paths = _files(folder)
    report.stats.update(classes=len(classes), images=len(paths))
    if not paths:
        report.add(ERROR, "image folders without images", folder)
    for name in classes:
        if not _files(osp.join(folder, name)):
            report.add(WARNING, "classes with no images", name)
    check_images(report, paths, folder, sample)
    return report


#: dataset types whose ``ann_file`` is COCO json with ``file_name`` relative to
#: ``data_prefix.img`` (besides plugin types named ``*Coco*``); ``CityscapesDataset``: the json
#: mmdet's ``tools/dataset_converters/cityscapes.py`` writes
COCO_FORMAT_TYPES = frozenset({"CocoDataset", "CityscapesDataset"})
#: ``*Coco*`` types whose annotation file is not detection json
NOT_COCO_FORMAT_TYPES = frozenset({"CocoPanopticDataset", "CocoCaptionDataset",
                                   "CocoSemanticDataset"})


def _is_coco_format(kind: str) -> bool:
    short = kind.rpartition(".")[2]
    return short in COCO_FORMAT_TYPES or ("Coco" in short and short not in
                                          NOT_COCO_FORMAT_TYPES)


def cityscapes_gt_path(img_path: str) -> str:
    """The ``gtFine/*_gtFine_instanceIds.png`` that mmdet's ``CityScapesMetric`` reads for an
    image (the same replacements as ``CityScapesMetric.process``)."""
    return img_path.replace("leftImg8bit.png", "gtFine_instanceIds.png").replace(
        "leftImg8bit", "gtFine")


def check_cityscapes_gt(report: DataReport, ann_file: str, image_root: str) -> None:
    """Every image of a Cityscapes json has the instance-id png ``CityScapesMetric`` reads."""
    try:
        with open(ann_file) as f:
            images = json.load(f).get("images") or []
    except (OSError, ValueError, AttributeError):
        return  # check_coco reported it
    missing = [cityscapes_gt_path(osp.join(image_root, str(image.get("file_name"))))
               for image in images]
    missing = [path for path in missing if not osp.isfile(path)]
    for path in missing:
        base = osp.commonpath([osp.abspath(image_root), osp.abspath(path)])
        report.add(ERROR, "missing gtFine instanceIds files (CityScapesMetric reads them "
                          "when it evaluates)", osp.relpath(path, base))


def check_dataset_config(dataset: dict, sample: int | None = None,
                         skipped: list[str] | None = None,
                         cityscapes_gt: bool = False) -> list[DataReport]:
    """Check the data an mmengine dataset config reads (wrappers are looked through): COCO
    format datasets (:data:`COCO_FORMAT_TYPES`) and folder datasets (no ``ann_file``).

    Datasets this does not check (other formats, remote storage, no folder) give no report
    and are appended to ``skipped`` as ``"Type (why)"``. ``cityscapes_gt``: also check the
    ``gtFine`` instance-id files of ``CityscapesDataset`` sets (what ``CityScapesMetric``
    reads).
    """
    skipped = [] if skipped is None else skipped
    while "dataset" in dataset and isinstance(dataset["dataset"], dict):
        dataset = dataset["dataset"]
    if "datasets" in dataset:
        return [r for d in dataset["datasets"]
                for r in check_dataset_config(d, sample, skipped, cityscapes_gt)]
    root = dataset.get("data_root") or ""
    prefix = dataset.get("data_prefix") or {}
    ann_file = dataset.get("ann_file") or ""
    kind = str(dataset.get("type", ""))
    if dataset.get("backend_args") or "://" in root:
        skipped.append(f"{kind} (remote storage)")
        return []  # read through mmengine's backends, not checked here
    if _is_coco_format(kind) and ann_file.endswith(".json") and "img" in prefix:
        classes = (dataset.get("metainfo") or {}).get("classes")
        ann_path, image_root = osp.join(root, ann_file), osp.join(root, prefix["img"])
        report = check_coco(ann_path, image_root, list(classes) if classes else None, sample)
        if cityscapes_gt and kind.rpartition(".")[2] == "CityscapesDataset":
            check_cityscapes_gt(report, ann_path, image_root)
        return [report]
    if ann_file:
        skipped.append(f"{kind} (an annotation format this check does not read: {ann_file})")
        return []
    folders = [prefix] if isinstance(prefix, str) else list(prefix.values())
    reports = []
    for folder in folders:
        path = osp.join(root, folder)
        if osp.isdir(path):
            reports.append(check_image_folder(path, sample))
    if not reports:
        skipped.append(f"{kind} (no annotation file and no image folder to check)")
    return reports


def check_path(path: str, sample: int | None = None) -> list[DataReport]:
    """Check a dataset folder in any layout ``tools/train.py --data`` takes, or a COCO json
    (images looked up in the folder named like its suffix, as for ``--data``)."""
    from cplugins.data.layouts import DataError, resolve_data

    if osp.isfile(path) and path.endswith(".json"):
        root = osp.dirname(osp.dirname(osp.abspath(path)))
        suffix = osp.basename(path)[:-len(".json")].split("_", 1)[-1]
        candidates = [f"{suffix}/", f"images/{suffix}/", "images/", ""]
        if osp.basename(path).startswith("instancesonly_filtered_gtFine_"):  # Cityscapes
            candidates.insert(0, f"leftImg8bit/{suffix.rpartition('_')[2]}/")
        img = next(c for c in candidates if osp.isdir(osp.join(root, c)))
        return [check_coco(path, osp.join(root, img), None, sample)]
    if not osp.isdir(path):
        raise DataCheckError(f"{path}: no such file or directory; give a dataset folder or a "
                             "COCO annotation json")
    cityscapes = sorted(glob.glob(osp.join(path, "annotations",
                                           "instancesonly_filtered_gtFine_*.json")))
    if cityscapes:  # mmdet's Cityscapes layout: each json, its images and gtFine files
        reports = []
        for ann_file in cityscapes:
            split = osp.basename(ann_file)[len("instancesonly_filtered_gtFine_"):-len(".json")]
            image_root = osp.join(path, "leftImg8bit", split)
            reports.append(check_coco(ann_file, image_root, None, sample))
            if osp.isdir(osp.join(path, "gtFine", split)):
                check_cityscapes_gt(reports[-1], ann_file, image_root)
        return reports
    problems = []
    for task in ("detection", "classification", "segmentation"):
        try:
            info = resolve_data(task, path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        reports = []
        for split in info.splits:
            reports += check_dataset_config(info.dataset(split, pipeline=[]), sample)
        return reports
    raise DataCheckError(f"{path}: not a dataset layout cplugins knows:\n  "
                         + "\n  ".join(problems))


def print_reports(reports: list[DataReport], stream=None) -> int:
    """Print the reports; 1 when any has errors, else 0."""
    import sys

    stream = stream or sys.stdout
    for report in reports:
        stream.write(report.format() + "\n")
    return 1 if any(r.errors for r in reports) else 0


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def cmd_data_check(args) -> int:
    import sys

    try:
        reports = check_path(args.path, args.sample)
    except DataCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return print_reports(reports)


def add_parsers(sub):
    """``cplugins data check PATH [--sample N]`` (light: no torch); returns the ``data``
    sub-command parsers, for other ``cplugins data`` commands."""
    p_data = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p_check = data_sub.add_parser(
        "check", help="find missing/truncated images and bad annotations before training",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p_check.add_argument("path", help="dataset folder (COCO, Cityscapes, image folders, "
                                      "img_dir/ann_dir) or a COCO annotation json")
    p_check.add_argument("--sample", type=_positive, metavar="N",
                         help="decode only N images per split, chosen reproducibly (big sets); "
                              "annotations are always checked in full")
    p_check.set_defaults(func=cmd_data_check)
    return data_sub


def check_training_data(cfg, sample: int | None = None, stream=None) -> list[DataReport]:
    """Check the data of ``cfg``'s train and val dataloaders; print what was found (rank 0)
    and raise :class:`DataCheckError` when there are errors."""
    import sys

    reports, skipped = [], []
    evaluators = cfg.get("val_evaluator") or []
    evaluators = [evaluators] if isinstance(evaluators, dict) else list(evaluators)
    cityscapes_metric = any(isinstance(e, dict) and str(e.get("type", "")).rpartition(".")[2]
                            == "CityScapesMetric" for e in evaluators)
    for loader in ("train_dataloader", "val_dataloader"):
        dataset = (cfg.get(loader) or {}).get("dataset")
        if isinstance(dataset, dict):
            skipped_here: list[str] = []
            reports += check_dataset_config(dataset, sample, skipped_here,
                                             cityscapes_gt=loader == "val_dataloader"
                                             and cityscapes_metric)
            skipped += [f"{loader}: {what}" for what in skipped_here]
    failed = [r for r in reports if r.errors]
    if failed:
        raise DataCheckError("the data check found errors (--no-data-check skips it):\n"
                             + "\n".join(r.format() for r in reports))
    if os.environ.get("RANK", "0") == "0":
        stream = stream or sys.stderr
        for report in reports:
            stream.write(f"data check: {report.format()}\n")
        if skipped:
            stream.write(f"data check: not checked: {'; '.join(skipped)}\n")
    return reports
