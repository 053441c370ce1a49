"""`python -m deploy.image build|export|run`: the image from the command line (as root).

build   the base (cached under --cache) and the image xyd-gateway:<version>
export  build, then write --out/rootfs and --out/image.json
run     export, then run `xyd ARGS` (`serve` when none) from the root, the
        settings from the XYD_ variables of this environment
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deploy.image import rootfs
from deploy.image.base import DEFAULT_CACHE
from deploy.image.build import build
from deploy.image.export import DEFAULT_OUT, export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.image")
    parser.add_argument("action", choices=("build", "export", "run"))
    parser.add_argument("args", nargs="*", help="run: the xyd command (default: serve)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="mmdebstrap's tarballs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where export writes")
    parser.add_argument("--state", type=Path, default=Path(".xyd/image-state"))
    parser.add_argument("--netns", help="run: inside this `ip netns` namespace")
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="HOST:INSIDE",
        help="run: a host file or directory bound read-only at INSIDE (keys); repeatable",
    )
    options = parser.parse_args(argv)

    built = build(options.cache)
    for line in built.log:
        print(line)
    if options.action == "build":
        return 0
    out = export(built.image, options.out)
    print(f"exported {built.image} to {out}/rootfs")
    if options.action == "export":
        return 0
    options.state.mkdir(parents=True, exist_ok=True)
    os.chown(options.state, 10001, 10001)
    settings = {k: v for k, v in os.environ.items() if k.startswith("XYD_")}
    binds = {Path(host): inside for host, _, inside in (b.partition(":") for b in options.bind)}
    argv_run = rootfs.command(
        out, state=options.state, args=options.args or None, binds=binds, netns=options.netns
    )
    # exec: this process becomes the gateway, so a signal to it stops the gateway.
    os.execvpe(argv_run[0], argv_run, rootfs.environment(out, settings))  # noqa: S606


if __name__ == "__main__":
    raise SystemExit(main())
