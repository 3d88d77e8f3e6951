# RetinaNet with a BN-Inception ("InceptionV2") backbone and FPN on COCO: the base of the
# Clarifai_InceptionV2 detection template. Backbone stages 1-3 (strides 8, 16, 32) feed
# P3-P5; two extra convs on the input give P6-P7, as RetinaNet's anchors expect.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cplugins_inception'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='BNInception',
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_eval=False),
    neck=dict(
        in_channels=[320, 608, 1024],
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5))
