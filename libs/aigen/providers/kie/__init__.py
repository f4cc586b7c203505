"""Kie.ai adapters: one class per Kie API family; every seed adapter name resolves to one."""

from __future__ import annotations

from aigen.providers.base import BaseAdapter
from aigen.providers.kie.adapter import KieAdapter
from aigen.providers.kie.flux import KieFluxKontextAdapter
from aigen.providers.kie.gpt4o import Kie4oImageAdapter
from aigen.providers.kie.market import KieMarketAdapter
from aigen.providers.kie.midjourney import KieMidjourneyAdapter
from aigen.providers.kie.runway import KieRunwayAdapter, KieRunwayExtendAdapter
from aigen.providers.kie.unavailable import KieUnavailableAdapter
from aigen.providers.kie.veo import KieVeoAdapter, KieVeoExtendAdapter

_MARKET_NAMES = (
    "KieSora2Adapter",
    "KieSora2ImageToVideoAdapter",
    "KieSora2ProAdapter",
    "KieSora2ProImageToVideoAdapter",
    "KieNanoBananaAdapter",
    "KieNanoBananaEditAdapter",
    "KieNanoBananaUpscaleAdapter",
    "KieSeedreamV4Adapter",
    "KieSeedreamV4EditAdapter",
    "KieQwenImageEditAdapter",
    "KieSoraWatermarkRemoverAdapter",
    "KieKlingV2MasterImageToVideoAdapter",
    "KieKlingV2MasterTextToVideoAdapter",
    "KieKlingV2StandardAdapter",
    "KieKlingV2ProAdapter",
    "KieKlingV25TurboProAdapter",
    "KieKlingV25TurboTextToVideoProAdapter",
    "KieWan22A14bTextToVideoTurboAdapter",
    "KieWan22A14bImageToVideoTurboAdapter",
    "KieWan25TextToVideoAdapter",
    "KieWan25ImageToVideoAdapter",
    "KieByteDanceV1ProTextToVideoAdapter",
    "KieByteDanceV1ProImageToVideoAdapter",
)

ADAPTERS: dict[str, type[BaseAdapter]] = {
    "KieImageAdapter": Kie4oImageAdapter,
    "KieFluxKontextAdapter": KieFluxKontextAdapter,
    "KieMidjourneyAdapter": KieMidjourneyAdapter,
    "KieSoraAdapter": KieUnavailableAdapter,
    "KieVeo3Adapter": KieVeoAdapter,
    "KieVeo31Adapter": KieVeoAdapter,
    "KieVeo31ExtendAdapter": KieVeoExtendAdapter,
    "KieRunwayAdapter": KieRunwayAdapter,
    "KieRunwayExtendAdapter": KieRunwayExtendAdapter,
    **dict.fromkeys(_MARKET_NAMES, KieMarketAdapter),
}

__all__ = [
    "ADAPTERS",
    "Kie4oImageAdapter",
    "KieAdapter",
    "KieFluxKontextAdapter",
    "KieMarketAdapter",
    "KieMidjourneyAdapter",
    "KieRunwayAdapter",
    "KieRunwayExtendAdapter",
    "KieUnavailableAdapter",
    "KieVeoAdapter",
    "KieVeoExtendAdapter",
]
