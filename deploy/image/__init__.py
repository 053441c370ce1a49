"""The gateway's OCI image, built with buildah on a Debian base from mmdebstrap.

base.py (the cached base root filesystem), build.py (the production
distribution on it, Containerfile), export.py (the image as a root
filesystem directory and its config), rootfs.py (run it without a container
runtime: read-only root, uid 10001). `python -m deploy.image build|export|run`.
"""
