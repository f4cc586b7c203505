"""aigen services: each folder is one deployable process."""
