"""The shipped general model: ``general_n64.zip`` (a bundle) and ``general_n64.json`` (how it was
trained), produced by ``scripts/train_general.py``. Load it with ``load_bundle("general")``."""
