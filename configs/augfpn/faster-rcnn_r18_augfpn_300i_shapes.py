# AugFPN ablation on the synthetic shapes, full AugFPN: RFA + Consistent Supervision + Soft RoI
# Selection (every RoI pooled from all levels, fused by learned per-RoI spatial attention).
_base_ = './faster-rcnn_r18_augfpn-rfa-cs_300i_shapes.py'

model = dict(roi_head=dict(bbox_roi_extractor=dict(type='SoftRoIExtractor')))
