"""Models listed for Kie.ai that have no working API: they answer UNSUPPORTED, never call out."""

from __future__ import annotations

from aigen.providers.kie.adapter import KieAdapter

PLAIN_SORA_REASON = (
    "Kie.ai offers no API for the original Sora model (only Sora 2, a separate model); use kie-sora-2 instead"
)


class KieUnavailableAdapter(KieAdapter):
    family_defaults = {"unsupported": PLAIN_SORA_REASON}
