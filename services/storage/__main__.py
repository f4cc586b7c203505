"""`python -m services.storage`"""

from aigen.runtime import main

from services.storage.server import SPEC

main(SPEC)
