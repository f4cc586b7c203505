"""Faithful fakes of each provider's HTTP API, for tests and for `aigen simulate`."""
