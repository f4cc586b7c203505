"""The studio service."""
