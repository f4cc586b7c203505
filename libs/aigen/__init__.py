"""aigen: one request to many AI media providers, tracked as an event-sourced task."""

__version__ = "0.1.0"
