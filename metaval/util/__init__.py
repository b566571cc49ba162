"""Small helpers shared by every layer (I/O, fingerprints, tables)."""
