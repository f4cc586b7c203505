"""The `aigen` command line."""
