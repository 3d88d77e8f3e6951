# BN-Inception image classifier on ImageNet-1k (mmpretrain's standard ResNet recipe: SGD,
# batch 8x32, step decay): the base of Clarifai_InceptionBatchNorm and Clarifai_InceptionV2.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['cplugins_inception'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='BNInception', out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
