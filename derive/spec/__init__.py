"""The spec: its schema, loading and the built-in examples."""
