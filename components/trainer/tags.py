"""TensorBoard run and tag names: one owner for what telemetry writes, the
dashboards lay out, and reports and tests read back.

A variable's tags put the variable before pre/post (``grad_norm/<variable>/pre_clip``)
so that its pre- and post-clip cards sit next to each other in TensorBoard,
which sorts cards by tag.
"""
from __future__ import annotations

from typing import Optional

# Per-step scalars and histograms; also the Clipping layout, the run's HParams session and its
# end-of-run values (FINAL). Not the log folder itself: TensorBoard names that run "<name>/.",
# which its HParams plugin then cannot find metrics in.
TRAIN_RUN = "train"
EVAL_RUN = "eval"  # after each epoch

LOSS = "loss"  # train (per step) and eval (per epoch)
ACCURACY = "accuracy"  # eval
LEARNING_RATE = "learning_rate"
PRE_CLIP = "grad_norm/pre_clip"  # global norm
POST_CLIP = "grad_norm/post_clip"
THRESHOLD = "clip/threshold"  # only where a norm bound applies
SCALE = "clip/scale"  # post / pre global norm
CLIPPED = "clip/clipped"  # 1 if this step was clipped
CLIPPED_FRACTION = "clip/clipped_fraction"  # of the finite steps so far
CLIPPED_RECENT = "clip/clipped_fraction_recent"  # of the last telemetry.clip_rate_window finite steps
NONFINITE = "nonfinite/steps"  # count so far
SKIPPED_SPIKES = "skip/spikes"  # steps a spike guard (clip.skip_spikes) skipped, so far
ROLLBACKS = "rollback/count"  # rollbacks on divergence so far (trainer.on_divergence = "rollback")
UPDATE_NORM = "update/norm"  # global norm of the update the optimizer applied (the weights' change, not the gradient)
UPDATE_RATIO = "update/ratio"  # global ||update|| / ||weights after it||
NOISE_SCALE = "noise/b_simple"  # the gradient noise scale B_simple (EMA), where telemetry.noise_scale
BATCH_SIZE = "noise/batch_size"  # beside it: the batch this step trained on
STRATEGY = "clip/"  # prefix of what a strategy or guard measures beyond the norms (ClipStats.extra): clip/zclip_z
FINAL = "final/"  # prefix of the end-of-run values (HParams metrics)
# Plugins of the records that describe a run rather than measure a step (the Clipping layout, HParams).
RUN_RECORD_PLUGINS = ("custom_scalars", "hparams")
PRE, POST = "pre_clip", "post_clip"


def variable_norm(variable: str, when: str) -> str:
    """``grad_norm/dense_0/kernel/pre_clip``: one variable's gradient norm, ``when`` = PRE or POST."""
    return f"grad_norm/{variable}/{when}"


def variable_of_norm(tag: str, when: str) -> Optional[str]:
    """The variable a ``variable_norm(variable, when)`` tag names; None for any other tag."""
    head, tail = "grad_norm/", "/" + when
    if tag.startswith(head) and tag.endswith(tail) and len(tag) > len(head) + len(tail):
        return tag[len(head) : -len(tail)]
    return None


def gradient_histogram(variable: str, when: str) -> str:
    return f"grad_hist/{variable}/{when}"


def weights_histogram(variable: str) -> str:
    return f"weights/{variable}"


def variable_update(variable: str, what: str) -> str:
    """``update/dense_0/kernel/norm`` (``what`` = "norm") or ``.../ratio``: one variable's update."""
    return f"update/{variable}/{what}"
