# AugFPN ablation on the multi-scale synthetic shapes, baseline: Faster R-CNN, slim ResNet-18
# (32 base channels, from scratch, BN in train mode), mmdet's FPN (64 channels), RoIAlign with
# sampling_ratio=2. The other ablation configs (+RFA, +RFA+CS, full AugFPN) inherit from it.
# Data: cplugins.shapes with size_sampling='log' and shape_size=(4, 100) on 128x128
# images: 1-12 objects per image (crowded and sparse scenes), as many objects per octave of
# scale from 4 px to 100 px (most of the image), textured backgrounds; 512 training and 128
# validation images. Schedule: 150 iterations of batch 4 (1.2 epochs), AdamW lr 2e-3, 50
# iterations of linear warm-up, then cosine decay; sized so that 4 variants x 5 seeds train in
# about an hour on a shared 2-core CPU.
# Regenerate the table with  python tools/augfpn_ablation.py  (see necks/augfpn/README.md).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/schedule_400i.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)
base = 32  # ResNet-18 width: stages of 32, 64, 128, 256 channels
channels = 64  # pyramid channels
image_size = (128, 128)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(depth=18, base_channels=base, frozen_stages=-1, norm_eval=False,
                  init_cfg=None),
    neck=dict(type='FPN', in_channels=[base, base * 2, base * 4, base * 8],
              out_channels=channels, num_outs=5),
    rpn_head=dict(
        in_channels=channels, feat_channels=channels,
        anchor_generator=dict(scales=[2])),  # anchors of 8..128 px for objects of 4..100 px
    roi_head=dict(
        bbox_roi_extractor=dict(
            out_channels=channels,
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2)),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200)))

data_root = 'data/shapes_detection_multiscale128/'
synthetic_data = dict(
    task='detection', data_root=data_root, num_train=512, num_val=128, image_size=image_size,
    min_objects=1, max_objects=12, shape_size=(4, 100), size_sampling='log', seed=0)
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
train_dataloader = dict(
    batch_size=4, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_iters = 150
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
