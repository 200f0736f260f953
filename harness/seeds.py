"""Every seed offset and fixed seed, named in one place.

A trial has one seed. Each use of randomness derives its own stream from it by mixing in (or adding) one of the
constants below, so the streams stay independent of each other: changing how one use draws never shifts what
another draws. The values are part of every recorded result (the golden quick-suite test pins them), so they
never change; a new use of randomness gets a new constant here.
"""

from __future__ import annotations

# Mixed into numpy's seed sequence [seed, epoch, EPOCH_ORDER_STREAM]: each epoch's sample permutation, the same
# batches in the same order for every backend (harness.data.batching).
EPOCH_ORDER_STREAM = 0xBA7C4

# Mixed into [seed, layer index, INIT_STREAM]: each layer's initial weights (harness.weights), one generator per
# layer so adding a layer leaves the other layers' weights unchanged.
INIT_STREAM = 0x5EED

# Added to the trial seed for the initial weights of a new classification head on a reused backbone
# (harness.strategies.reuse): the head's draws differ from the ones the backbone's own head started from.
FRESH_HEAD_SEED_OFFSET = 7919  # a prime, far from the small seeds (0, 1, 2, ...) trials use

# Streams of the counter-based dropout generator (harness.dropout_rng): training steps and MC-dropout passes
# draw different masks for the same (seed, step, layer).
DROPOUT_STREAM_TRAIN = 0
DROPOUT_STREAM_MC = 1

# Mixed into [seed, epoch, STREAM]: each epoch's random crop offsets and horizontal flips, one per training sample
# (harness.augment), in two streams so turning crops or flips on or off leaves the other's draws unchanged.
AUGMENT_CROP_STREAM = 0xC409
AUGMENT_FLIP_STREAM = 0xF11B

# The fixed train/val/test split of the embedded digits dataset (harness.data.registry): independent of trial
# seeds, so every trial of every run sees the same split.
DIGITS_SPLIT_SEED = 20240611

# The images a converted weight file is checked on (harness.weights_worker): standard normal, like inputs after
# normalisation, the same for every conversion so a checkpoint's recorded agreement can be reproduced.
WEIGHT_PROBE_SEED = 0

# The bootstrap of the comparison's intervals (harness.statistics, harness.compare): fixed, so the same runs always
# give the same interval and verdict.
BOOTSTRAP_SEED = 0

# Mixed into [PLOT_JITTER_STREAM, position]: the horizontal jitter of a strip plot's points (harness.plots), so a
# report drawn twice from the same runs is the same picture.
PLOT_JITTER_STREAM = 0x7177E2

# Framework-native dropout (--dropout-rng framework): layer ``index`` of a trial seeded ``seed`` gets
# seed * NATIVE_DROPOUT_SEEDS_PER_TRIAL + index, distinct per layer and per trial (for up to 1000 layers).
NATIVE_DROPOUT_SEEDS_PER_TRIAL = 1000


def native_dropout_seed(seed: int, layer_index: int) -> int:
    """The seed of one framework-native dropout layer (see NATIVE_DROPOUT_SEEDS_PER_TRIAL)."""
    return seed * NATIVE_DROPOUT_SEEDS_PER_TRIAL + layer_index
