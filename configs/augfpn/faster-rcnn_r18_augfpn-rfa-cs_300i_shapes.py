# AugFPN ablation on the synthetic shapes, step "+RFA+CS": Consistent Supervision on top of RFA
# (auxiliary box head on the sampled RoIs pooled from every pre-fusion lateral, weight 0.25).
_base_ = './faster-rcnn_r18_augfpn-rfa_300i_shapes.py'

model = dict(
    type='CSTwoStageDetector',
    roi_head=dict(type='CSRoIHead', aux_loss_weight=0.25))
