"""`python -m services.catalog`"""

from aigen.runtime import main

from services.catalog.server import SPEC

main(SPEC)
