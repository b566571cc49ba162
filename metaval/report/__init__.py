"""Nutrition Facts reports: JSON, HTML and PNG."""
