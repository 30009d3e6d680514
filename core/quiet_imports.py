"""TransformerLens imports, with the warnings it emits on import filtered.

Importing transformer_lens takes seconds, so only modules that need hook points import this.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    from transformer_lens import hook_points  # noqa: F401
