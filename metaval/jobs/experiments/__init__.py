"""The experiments: one module per results table (``metaval experiment <name>``).

Each module defines ``TITLE``, ``CLAIM`` and ``run(mode, workdir) -> Result``; the
runner in :mod:`metaval.jobs.experiment` writes and publishes the table.
"""
