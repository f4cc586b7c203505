"""The ops service: provider health, the error log, circuit breaking, system alerts."""
