# AugFPN ablation on the multi-scale synthetic shapes, step "+RFA": the FPN baseline with the
# AugFPN neck (FPN + Residual Feature Augmentation), nothing else changed.
_base_ = './faster-rcnn_r18-w32_fpn_150i_shapes-multiscale128.py'

model = dict(neck=dict(type='AugFPN'))
