"""`python -m services.ops`"""

from aigen.runtime import main

from services.ops.server import SPEC

main(SPEC)
