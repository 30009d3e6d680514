"""Which tokens of an activating window count as its active ones: at or above 0.3 x the window's own
maximum (delphi's threshold, docs/language.md section 4.4). Used to mark explanation examples and to highlight
fuzzing examples, so both show the same tokens."""

from __future__ import annotations

import numpy as np

from tasks.language.autointerp.backend import Example

HIGHLIGHT_THRESHOLD = 0.3


def active_positions(example: Example, threshold: float = HIGHLIGHT_THRESHOLD) -> tuple[int, ...]:
    acts = np.asarray(example.activations, dtype=np.float64)
    peak = acts.max() if acts.size else 0.0
    # the ratio, not threshold * peak: 3 of a peak of 10 is 0.3 of it, while 0.3 * 10 rounds above 3
    return tuple(int(i) for i in np.flatnonzero(acts / peak >= threshold)) if peak > 0 else ()
