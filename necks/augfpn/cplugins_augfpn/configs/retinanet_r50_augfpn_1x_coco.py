# AugFPN (Residual Feature Augmentation + Consistent Supervision) on mmdet's RetinaNet R50-FPN
# 1x COCO config. Follows the authors' configs/retinanet_r50_augfpn_1x.py
# (github.com/Gus-Guo/AugFPN): neck HighFPNRetinanet -> AugFPN (start_level=1, extra convs on
# the input, as mmdet's RetinaNet FPN); use_consistent_supervision=True -> CSSingleStageDetector
# with weight 0.25. Soft RoI Selection needs RoIs: two-stage detectors only.
# Consistent Supervision is the authors' one-stage branch (aux_mode='rcnn', the default: the
# dense head's detections sampled like R-CNN proposals, pooled from the three laterals into an
# auxiliary 2-FC box head; their train_cfg.auxiliary settings).
# Deliberate differences: mmdet 3's values where the authors' FPN baseline shares theirs: no
# gradient clipping (authors max_norm=35), warm-up from 0.001 x lr (authors 1/3). As theirs:
# lr 0.01 for 16 images, 12 epochs, steps at 8 and 11.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSSingleStageDetector',
    aux_loss_weight=0.25,
    neck=dict(type='AugFPN', pool_ratios=(0.1, 0.2, 0.3)))
