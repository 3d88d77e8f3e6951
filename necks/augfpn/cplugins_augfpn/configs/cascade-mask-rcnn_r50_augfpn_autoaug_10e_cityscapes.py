# The ported mmdet tutorial (cascade-mask-rcnn_r50_augfpn-rfa_autoaug_10e_cityscapes.py: same
# data, schedule and COCO start) with all three AugFPN components on the cascade:
#   Residual Feature Augmentation (the AugFPN neck);
#   Soft RoI Selection for the box RoI extractor of every stage and for the mask one;
#   Consistent Supervision: CSTwoStageDetector + CSCascadeRoIHead, aux_loss_weight=0.25 (the
#   authors' alpha), on the first stage only (aux_stages=(0,), see cascade.py for why).
# No published result: the authors trained no cascade and the tutorial reports none.
_base_ = './cascade-mask-rcnn_r50_augfpn-rfa_autoaug_10e_cityscapes.py'

model = dict(
    type='CSTwoStageDetector',
    roi_head=dict(
        type='CSCascadeRoIHead',
        aux_loss_weight=0.25,
        aux_stages=(0, ),
        bbox_roi_extractor=dict(type='SoftRoIExtractor'),
        mask_roi_extractor=dict(type='SoftRoIExtractor')))
