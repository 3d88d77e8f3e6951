# AugFPN ablation on the multi-scale synthetic shapes, full AugFPN: RFA + Consistent Supervision
# + Soft RoI Selection (every RoI pooled from all levels, fused by learned per-RoI attention).
_base_ = './faster-rcnn_r18-w32_augfpn-rfa-cs_150i_shapes-multiscale128.py'

model = dict(roi_head=dict(bbox_roi_extractor=dict(type='SoftRoIExtractor')))
