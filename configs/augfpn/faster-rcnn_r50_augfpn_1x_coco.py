# Faster R-CNN R50 with all three AugFPN components on COCO (mmdet's 1x schedule):
# Residual Feature Augmentation (the AugFPN neck), Consistent Supervision (CSTwoStageDetector +
# CSRoIHead: auxiliary box head on RoIs pooled from every pre-fusion lateral, weight 0.25) and
# Soft RoI Selection (SoftRoIExtractor). Paper (not measured here): +2.3 AP over FPN.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSTwoStageDetector',
    neck=dict(
        type='AugFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        pool_ratios=(0.1, 0.2, 0.3)),
    roi_head=dict(
        type='CSRoIHead',
        aux_loss_weight=0.25,
        # aux_bbox_head / aux_roi_extractor default to copies of bbox_head / the RoI layer
        bbox_roi_extractor=dict(type='SoftRoIExtractor')))
