"""What services share about operations: stream names, the breaker gate, the error recorder.

The ops service (services/ops) owns health checks, breaker decisions and alerts; the dispatcher
and the poller only read the breaker and report adapter errors through these modules.
"""
