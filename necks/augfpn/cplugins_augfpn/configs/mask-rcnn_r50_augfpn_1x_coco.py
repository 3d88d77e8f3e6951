# AugFPN (all three components) on mmdet's Mask R-CNN R50-FPN 1x COCO config.
# Follows the authors' configs/mask_rcnn_r50_augfpn_1x.py (github.com/Gus-Guo/AugFPN): neck
# AugFPN; Soft RoI Selection for the box AND the mask RoI extractor (SoftRoIExtractor, 7x7 and
# 14x14); Consistent Supervision (CSTwoStageDetector + CSRoIHead, aux_loss_weight=0.25 = their
# alpha) on the box branch.
# Deliberate differences: the authors' mask_auxiliary=True also trains an auxiliary mask head
# on the positive RoIs pooled from every lateral (their comment: "marginal improvement of
# mask"); CSRoIHead has no auxiliary mask head, so only the box branch is supervised on the
# laterals. Otherwise those of faster-rcnn_r50_augfpn_1x_coco.py (mmdet 3's RoIAlign
# sampling, no gradient clipping, warm-up, test proposals); lr 0.02 for 16 images as theirs.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSTwoStageDetector',
    neck=dict(type='AugFPN', pool_ratios=(0.1, 0.2, 0.3)),
    roi_head=dict(
        type='CSRoIHead',
        aux_loss_weight=0.25,
        bbox_roi_extractor=dict(type='SoftRoIExtractor'),
        mask_roi_extractor=dict(type='SoftRoIExtractor')))
