# AugFPN (all three components) on mmdet's Faster R-CNN X101-64x4d-FPN 1x COCO config.
# Follows the authors' configs/faster_rcnn_x101_64x4d_augfpn_1x.py (github.com/Gus-Guo/AugFPN):
# the same AugFPN changes as faster-rcnn_r50_augfpn_1x_coco.py (AugFPN neck, SoftRoIExtractor,
# Consistent Supervision with weight 0.25) on the ResNeXt-101 64x4d backbone.
# Deliberate differences: the authors trained 8 GPUs x 1 image at lr 0.01; this keeps mmdet's
# 16 images at lr 0.02 (the same lr per image; with 8 images, --auto-scale-lr gives 0.01).
# Otherwise those of faster-rcnn_r50_augfpn_1x_coco.py (mmdet 3's RoIAlign sampling, no
# gradient clipping, warm-up, test proposals).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSTwoStageDetector',
    neck=dict(type='AugFPN', pool_ratios=(0.1, 0.2, 0.3)),
    roi_head=dict(
        type='CSRoIHead',
        aux_loss_weight=0.25,
        bbox_roi_extractor=dict(type='SoftRoIExtractor')))
