"""Training that never lies: a NaN/inf guard, atomic checkpoints that restore every random
state, strict checkpoint loading and CPU mixed precision (mmengine hooks and helpers).

The hooks are registered into mmengine's root ``HOOKS`` registry by the built-in plugin
(``cplugins.builtin``), so ``type='NanGuardHook'`` works in any config; ``tools/train.py``
adds them by default (:func:`cplugins.training.setup.add_training_safeguards`).
"""
