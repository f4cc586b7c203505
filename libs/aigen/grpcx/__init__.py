"""gRPC plumbing shared by every service: server, client channels, interceptors, status details."""
