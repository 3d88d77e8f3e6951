# AugFPN ablation on the multi-scale synthetic shapes, step "+RFA+CS": Consistent Supervision on
# top of RFA (auxiliary box head on the sampled RoIs pooled from every pre-fusion lateral,
# weight 0.25; training only).
_base_ = './faster-rcnn_r18-w32_augfpn-rfa_150i_shapes-multiscale128.py'

model = dict(
    type='CSTwoStageDetector',
    roi_head=dict(type='CSRoIHead', aux_loss_weight=0.25))
