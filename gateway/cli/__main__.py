"""`python -m gateway.cli`: the same as the `xyd` console script."""

from gateway.cli import main

main()
