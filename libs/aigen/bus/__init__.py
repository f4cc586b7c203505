"""NATS JetStream: declared topology, the outbox relay from the event log, and event consumers."""
