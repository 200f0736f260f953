"""A plan's stages, in the order they run; each stage's rows carry its name in the ``stage`` column."""

STAGE_PRETRAIN, STAGE_TRIALS, STAGE_SEARCH, STAGE_FINAL = "pretrain", "trials", "search", "final"
