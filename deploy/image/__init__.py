"""The gateway's OCI image, built with buildah on a Debian base from mmdebstrap.

base.py (the cached base root filesystem), build.py (the production
distribution on it, Containerfile), export.py (the image as a root
filesystem directory and its config), rootfs.py (run it without a container
runtime: read-only root, uid 10001), healthcheck.py (the image's HEALTHCHECK),
lock.py (one build or export at a time). `python -m deploy.image
build|export|run`.
"""
