# RetinaNet R50 with AugFPN on COCO (mmdet's 1x schedule): Residual Feature Augmentation (the
# AugFPN neck) and Consistent Supervision (CSSingleStageDetector: the RetinaNet head is also
# applied to the pre-fusion laterals, weight 0.25). Soft RoI Selection needs RoIs: two-stage only.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSSingleStageDetector',
    aux_loss_weight=0.25,
    # aux_bbox_head=None: the main bbox_head itself is applied to the pre-fusion pyramid
    neck=dict(
        type='AugFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_input',
        num_outs=5,
        pool_ratios=(0.1, 0.2, 0.3)))
