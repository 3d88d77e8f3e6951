# AugFPN (all three components) on mmdet's Faster R-CNN R50-FPN 1x COCO config.
# Follows the authors' configs/faster_rcnn_r50_augfpn_1x.py (github.com/Gus-Guo/AugFPN): what it
# changes against their faster_rcnn_r50_fpn_1x.py is changed here, nothing else:
#   neck HighFPN -> AugFPN (Residual Feature Augmentation, pool ratios 0.1/0.2/0.3);
#   bbox_roi_extractor -> SoftRoIExtractor (Soft RoI Selection);
#   use_consistent_supervision=True, alpha=0.25 -> CSTwoStageDetector + CSRoIHead,
#   aux_loss_weight=0.25 (Consistent Supervision, training only).
# Deliberate differences (settings the authors' FPN baseline shares, left at mmdet 3's values
# so that this config differs from mmdet's FPN model only by AugFPN): RoIAlign
# sampling_ratio 0 (authors 2), no gradient clipping (authors max_norm=35), warm-up from
# 0.001 x lr (authors 1/3), 1000 RPN proposals at test (authors 2000); 80 classes (mmdet v1's
# 81 counted the background). Same lr 0.02 for 16 images, 12 epochs, steps at 8 and 11.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSTwoStageDetector',
    neck=dict(type='AugFPN', pool_ratios=(0.1, 0.2, 0.3)),
    roi_head=dict(
        type='CSRoIHead',
        aux_loss_weight=0.25,
        # aux_bbox_head / aux_roi_extractor default to copies of bbox_head / the RoI layer
        bbox_roi_extractor=dict(type='SoftRoIExtractor')))
