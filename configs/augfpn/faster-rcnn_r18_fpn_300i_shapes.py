# AugFPN ablation on the synthetic shapes, baseline: the same Faster R-CNN R18 with mmdet's FPN.
_base_ = './faster-rcnn_r18_augfpn-rfa_300i_shapes.py'

model = dict(
    neck=dict(
        _delete_=True, type='FPN', in_channels=[64, 128, 256, 512], out_channels=128,
        num_outs=5))
