"""Shared by the numerics tests: a context in which floating-point trouble raises."""

import warnings

import numpy as np


def strict_numerics():
    """Overflow, invalid operations (nan) and division by zero raise; warnings are errors.

    Underflow is allowed: e^(-20000) rounding to 0 is the correct float answer, and no stable
    softmax or sigmoid can avoid it (np.errstate(all="raise") would flag it too).
    """

    class Strict:
        def __enter__(self):
            self.errstate = np.errstate(all="raise", under="ignore")
            self.errstate.__enter__()
            self.warnings = warnings.catch_warnings()
            self.warnings.__enter__()
            warnings.simplefilter("error")

        def __exit__(self, *exc):
            self.warnings.__exit__(*exc)
            return self.errstate.__exit__(*exc)

    return Strict()
