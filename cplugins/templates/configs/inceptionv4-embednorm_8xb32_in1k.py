# InceptionV4 with a normalized-embedding cosine head (EmbedNormClsHead) for transfer
# learning: the base of Clarifai_InceptionTransferEmbedNorm. EmbedNormClassifier averages the
# embeddings of an image and its horizontal flip at test time when the head asks for it.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['cplugins_inception', 'cplugins_embednorm'], allow_failed_imports=False)

model = dict(
    type='EmbedNormClassifier',
    backbone=dict(type='InceptionV4', out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='EmbedNormClsHead',
        num_classes=1000,
        in_channels=1536,
        embed_dim=256,
        scale=16.0,
        learnable_scale=True,
        logreg=False,
        average_flips=True,
        topk=(1, 5)))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
