"""`python -m services.studio`"""

from aigen.runtime import main

from services.studio.server import SPEC

main(SPEC)
