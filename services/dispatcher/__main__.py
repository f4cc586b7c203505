"""`python -m services.dispatcher`"""

from aigen.runtime import main

from services.dispatcher.server import SPEC

main(SPEC)
