# mmdet's tutorial "Train with customized models and standard datasets" (user_guides/train.md,
# file cascade-mask-rcnn_r50_augfpn_autoaug-10e_cityscapes.py), ported: Cascade Mask R-CNN R50
# with the AugFPN neck (Residual Feature Augmentation only, as the tutorial: no Consistent
# Supervision, no Soft RoI Selection; the model with all three is
# cascade-mask-rcnn_r50_augfpn_autoaug_10e_cityscapes.py) on Cityscapes (8 classes, bbox +
# segm), AutoAugment with Rotate / Rotate+TranslateX policies, SGD lr 0.01 (8 images), 500
# iterations of linear warm-up, lr x0.1 at epoch 8, 10 epochs (of the base's 8x repeated
# training set), starting from mmdet's COCO Cascade Mask R-CNN R50-FPN checkpoint.
# Differences from the tutorial text, each a fix:
#   * its `data = dict(samples_per_gpu=1, train=...)` is mmdet 2 syntax that mmdet 3 ignores
#     (AutoAugment would silently not run): here train_dataloader.dataset.dataset.pipeline;
#   * Rotate/TranslateX take mmdet 3's `img_border_value` (the tutorial's `img_fill_val` is
#     the mmdet 2 name and raises); Rotate's `scale=1` is dropped (mmdet 3 never rescales);
#     TranslateX level 5 = 5% of the width, its mmdet 3 meaning;
#   * the base's val/test evaluators are kept: COCO-style bbox + segm AP and CityScapesMetric.
# The FPN checkpoint loads into everything but the AugFPN additions (new, randomly initialised:
# mmengine reports them as missing keys).
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/cityscapes_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)


def _cityscapes_box_head(target_stds):
    return dict(
        type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024, roi_feat_size=7,
        num_classes=8,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=target_stds),
        reg_class_agnostic=True,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))


model = dict(
    # no ImageNet weights: load_from (COCO) initialises the model
    backbone=dict(init_cfg=None),
    neck=dict(type='AugFPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    roi_head=dict(
        bbox_head=[
            _cityscapes_box_head([0.1, 0.1, 0.2, 0.2]),
            _cityscapes_box_head([0.05, 0.05, 0.1, 0.1]),
            _cityscapes_box_head([0.033, 0.033, 0.067, 0.067]),
        ],
        mask_head=dict(num_classes=8)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='AutoAugment',
        policies=[
            [dict(type='Rotate', level=5, img_border_value=(124, 116, 104), prob=0.5)],
            [dict(type='Rotate', level=7, img_border_value=(124, 116, 104)),
             dict(type='TranslateX', level=5, prob=0.5, img_border_value=(124, 116, 104))],
        ]),
    dict(type='RandomResize', scale=[(2048, 800), (2048, 1024)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=1, num_workers=3,
                        dataset=dict(dataset=dict(pipeline=train_pipeline)))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=10, by_epoch=True, milestones=[8], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# lr 0.01 is for 8 GPUs x 1 image (tools/train.py --auto-scale-lr scales it to yours)
auto_scale_lr = dict(enable=False, base_batch_size=8)

load_from = 'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_mask_rcnn_r50_fpn_1x_coco/cascade_mask_rcnn_r50_fpn_1x_coco_20200203-9d4dcb24.pth'  # noqa: E501
