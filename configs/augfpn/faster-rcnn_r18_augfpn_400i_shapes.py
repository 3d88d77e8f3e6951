# The demo: Faster R-CNN, ResNet-18 from scratch, AugFPN neck, 400 iterations on the
# embedded synthetic shapes (CPU-sized: 128-channel pyramid, 256x320 images).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/schedule_400i.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)
channels = 128

model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(
        type='AugFPN', in_channels=[64, 128, 256, 512], out_channels=channels, num_outs=5),
    rpn_head=dict(
        in_channels=channels, feat_channels=channels,
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        # sampling_ratio=2: mmcv's CPU RoIAlign with adaptive sampling (0) dominated the step
        bbox_roi_extractor=dict(
            out_channels=channels,
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2)),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400))
log_processor = dict(by_epoch=False)
