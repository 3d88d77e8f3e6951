# AugFPN ablation on the synthetic shapes, step "+RFA": the demo model (Faster R-CNN, ResNet-18
# from scratch, 128-channel AugFPN neck = FPN + Residual Feature Augmentation) for 300 iterations
# on its own shapes dataset with a larger validation split (96 images).
# The other ablation configs inherit from this one; regenerate the table with
#   python tools/augfpn_ablation.py
_base_ = './faster-rcnn_r18_augfpn_400i_shapes.py'

max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
randomness = dict(seed=0)

data_root = 'data/shapes_detection_ablation/'
synthetic_data = dict(
    task='detection', data_root=data_root, num_train=128, num_val=96,
    image_size=(256, 320), seed=0)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
