"""Audits: memorization spot-checks (``membership``); more audits join this package."""
