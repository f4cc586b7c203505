"""`python -m services.poller`"""

from aigen.runtime import main

from services.poller.server import SPEC

main(SPEC)
