# The demo (`make demo`, tools/demo.py): FCOS (one-stage, anchor-free; GN head with centre
# sampling, centerness on the regression branch and GIoU loss) with a slim ResNet-18 (32 base
# channels, trained from scratch, BN in train mode) and the AugFPN neck (FPN + Residual Feature
# Augmentation), on an easy synthetic shapes task: 128x128 images, plain backgrounds, 1-3 shapes
# of 24-64 px (cplugins.shapes options background='plain', shape_size=(24, 64)); 512
# training images. Batch 8, AdamW with warm-up and cosine decay; validation on 64 held-out
# images (their own seed stream of the same generator) every 200 iterations, which gives the
# mAP curve the demo draws. The older Faster R-CNN demo is faster-rcnn_r18_augfpn_400i_shapes.py.
_base_ = [
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/schedule_400i.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)
base = 32
channels = 64
image_size = (128, 128)
model = dict(
    type='FCOS',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, base_channels=base, num_stages=4,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                  style='pytorch', init_cfg=None),
    neck=dict(type='AugFPN', in_channels=[base, base * 2, base * 4, base * 8],
              out_channels=channels, start_level=1, add_extra_convs='on_output',
              num_outs=5, relu_before_extra_convs=True),
    bbox_head=dict(
        type='FCOSHead', num_classes=3, in_channels=channels, stacked_convs=2,
        feat_channels=channels, strides=[8, 16, 32, 64, 128],
        regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 256), (256, 1e8)),
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        center_sampling=True, center_sample_radius=1.5, norm_on_bbox=True,
        centerness_on_reg=True, conv_bias=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    test_cfg=dict(nms_pre=500, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=50))
data_root = 'data/shapes_detection_easy128/'
synthetic_data = dict(
    task='detection', data_root=data_root, num_train=512, num_val=64, image_size=image_size,
    min_objects=1, max_objects=3, shape_size=(24, 64), background='plain', seed=0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=200)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
randomness = dict(seed=0)
# log_metric_by_epoch=False: validation metrics are logged at their iteration (the curve)
default_hooks = dict(logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
