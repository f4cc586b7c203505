"""Read models built from the event log, exactly once, rebuildable from zero."""

from aigen.projections.runner import Projection, ProjectionRunner, ProjectionStalled, ProjectionStatus

__all__ = ["Projection", "ProjectionRunner", "ProjectionStalled", "ProjectionStatus"]
