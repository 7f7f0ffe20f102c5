"""tlkit: the course's helper package.

Framework-neutral parts (data, plots) live here; the two twin modules
``tlkit.pytorch`` and ``tlkit.keras`` expose the same names for each
framework. Import exactly one of them per notebook::

    from tlkit import pytorch as tl     # or: from tlkit import keras as tl
"""

__all__ = ["data", "plots"]
