"""The task aggregate shared by the pipeline services (dispatcher, poller, storage)."""
