"""Deprecated alias of :mod:`clio_lab.release`, where every decision about what a run shows now lives."""

import warnings

from .release import (  # noqa: F401
    DEFAULT_MIN_CONVERSATIONS,
    DEFAULT_MIN_USERS,
    MASKED_DESCRIPTION,
    MASKED_METHOD,
    MASKED_NAME,
    WITHHELD_DESCRIPTION,
    WITHHELD_NAME,
    ThresholdReport,
    apply_thresholds,
    is_withheld,
    shows_model_text,
    threshold_reasons,
)

warnings.warn("clio_lab.privacy is now clio_lab.release", DeprecationWarning, stacklevel=2)
