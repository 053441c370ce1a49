"""`python -m gateway.cli`: the same as the `xyd` console script."""

from gateway.cli import main

# Guarded: tools that import every module (the regex audit walks the packages)
# must not start the command line.
if __name__ == "__main__":
    main()
