"""Exercises: variants, sheets and keys, grading, LMS exports."""
