"""The derivation and its record: the Solution, the JSON key, the matrix view, figure data."""
