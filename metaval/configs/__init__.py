"""The configs that ship with metaval, found by name (``--config labels:quick``).

Each module defines ``get_config(variant=None) -> ml_collections.ConfigDict``; its
docstring gives the command, the expected runtime on 2 CPU cores and the expected
result. :func:`metaval.configlib.load` loads them by module name.
"""
