# AugFPN (Residual Feature Augmentation + Consistent Supervision) on mmdet's FCOS R50-caffe
# GN-head 1x COCO config. Follows the authors' configs/fcos_r50_caffe_augfpn_gn_1x_4gpu.py
# (github.com/Gus-Guo/AugFPN): neck HighFPNRetinanet -> AugFPN (start_level=1, extra convs on
# P5 with a ReLU before them, as mmdet's FCOS FPN); use_consistent_supervision=True ->
# CSSingleStageDetector with weight 0.25.
# Consistent Supervision is the authors' one-stage branch (aux_mode='rcnn', the default; see
# retinanet_r50_augfpn_1x_coco.py). Deliberate difference: mmdet's FCOS config clips gradients
# at max_norm=35 (the authors': none): kept, as mmdet's FCOS baseline. As theirs: lr 0.01 for
# 16 images (they: 4 GPUs x 4), a constant 1/3 warm-up for 500 iterations, bias lr x2 and no
# bias decay.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['cplugins_augfpn'], allow_failed_imports=False)

model = dict(
    type='CSSingleStageDetector',
    aux_loss_weight=0.25,
    neck=dict(type='AugFPN', pool_ratios=(0.1, 0.2, 0.3)))
