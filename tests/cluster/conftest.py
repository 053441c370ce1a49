"""The cluster of deploy/cluster for the tests of this package: one per module
(starting one takes ~30 s), under a prefix and directory of its own so it runs
beside `make cluster` and beside another test module's cluster. Its gateway host
gw2 runs from the image's exported root filesystem (deploy/image), built and
exported once (the build is cached by its inputs and locked, shared with
tests/deploy/test_image.py).

Skipped, saying why, where namespaces cannot be made (not root, no `ip netns`)."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.cluster import lifecycle, netns
from deploy.cluster.gateways import Overrides
from deploy.cluster.topology import Cluster
from deploy.image.build import REPO, build
from deploy.image.export import export
from tests.cluster.world import Bank, seed_bank


@pytest.fixture(scope="session")
def image() -> Path:
    """The image exported (the same cache and output as tests/deploy/test_image.py)."""
    why = netns.available()
    if why is not None:
        pytest.skip(f"the cluster tests need network namespaces: {why}")
    built = build(REPO / ".xyd" / "image-cache")
    return export(built.image, REPO / ".xyd" / "image")


@pytest.fixture(scope="module")
def cluster_overrides() -> Overrides:
    """What a module's cluster runs beyond the defaults: a module that needs more
    (a platform switched on, shorter leases) defines a fixture of this name."""
    return Overrides()


@pytest.fixture(scope="module")
def cluster(image: Path, cluster_overrides: Overrides) -> Iterator[Cluster]:
    why = netns.available()
    if why is not None:
        pytest.skip(f"the cluster tests need network namespaces: {why}")
    root = Path(tempfile.mkdtemp(prefix="xyd-cluster-"))
    made = lifecycle.up(root / "cluster", f"xt{secrets.token_hex(3)}", image, cluster_overrides)
    try:
        yield made
    finally:
        left = lifecycle.down(made)
        root.rmdir()
        assert left == [], f"left over after down: {left}"


@pytest.fixture(scope="module")
def bank(cluster: Cluster) -> Bank:
    return seed_bank(cluster)
