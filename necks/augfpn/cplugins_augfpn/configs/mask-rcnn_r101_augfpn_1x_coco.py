# AugFPN (all three components) on mmdet's Mask R-CNN R101-FPN 1x COCO config.
# Follows the authors' configs/mask_rcnn_r101_augfpn_1x.py (github.com/Gus-Guo/AugFPN): the
# changes of mask-rcnn_r50_augfpn_1x_coco.py on the ResNet-101 backbone.
# Deliberate differences: the authors trained 8 GPUs x 1 image at lr 0.01; this keeps mmdet's
# 16 images at lr 0.02 (the same lr per image). No auxiliary mask head (their
# mask_auxiliary=True; see mask-rcnn_r50_augfpn_1x_coco.py), and mmdet 3's RoIAlign sampling,
# no gradient clipping, warm-up and test proposals.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSTwoStageDetector',
    neck=dict(type='AugFPN', pool_ratios=(0.1, 0.2, 0.3)),
    roi_head=dict(
        type='CSRoIHead',
        aux_loss_weight=0.25,
        bbox_roi_extractor=dict(type='SoftRoIExtractor'),
        mask_roi_extractor=dict(type='SoftRoIExtractor')))
