"""Fixtures of the docker-py compatibility suite.

The Rust test `dockerpy::docker_py_suite` (tests/tests/it/dockerpy.rs) starts the engine under
test and a local registry, then runs pytest here with:

- DOCKER_HOST: the engine's socket;
- CORRAL_TEST_SUBJECT: `corral` or `docker` (the reference dockerd);
- CORRAL_TEST_IMAGE: busybox in the local registry, already pulled;
- CORRAL_TEST_PULL_IMAGE: another busybox tag in the registry, not pulled;
- DOCKER_TLS_VERIFY and DOCKER_CERT_PATH when the suite runs over TCP with TLS.

The reference dockerd runs with `--bridge=none`, so containers use `network_mode="none"`.
Every resource a test creates is named with the run's prefix and removed by the fixtures.
"""

import os
import uuid

import docker
import pytest

SUBJECT = os.environ.get("CORRAL_TEST_SUBJECT", "corral") or "corral"


def corral_gap(reason):
    """A known gap: an expected failure on Corral (strict, so the suite fails when it starts
    to pass) and an ordinary test against dockerd, which proves the expectation."""
    return pytest.mark.xfail(SUBJECT == "corral", reason=reason, strict=True)


@pytest.fixture(scope="session")
def client():
    # DOCKER_HOST, and DOCKER_TLS_VERIFY with DOCKER_CERT_PATH for the TLS run.
    c = docker.from_env(version="auto", timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="session")
def api(client):
    return client.api


@pytest.fixture(scope="session")
def image():
    return os.environ["CORRAL_TEST_IMAGE"]


@pytest.fixture(scope="session")
def pull_image():
    return os.environ["CORRAL_TEST_PULL_IMAGE"]


class Names:
    """Unique resource names for one test; everything named is removed at teardown."""

    def __init__(self, client):
        self.client = client
        self.prefix = "py-" + uuid.uuid4().hex[:8]
        self.containers = []
        self.networks = []
        self.volumes = []
        self.images = []

    def container(self, base="c"):
        n = f"{self.prefix}-{base}"
        self.containers.append(n)
        return n

    def network(self, base="n"):
        n = f"{self.prefix}-{base}"
        self.networks.append(n)
        return n

    def volume(self, base="v"):
        n = f"{self.prefix}-{base}"
        self.volumes.append(n)
        return n

    def image(self, ref):
        self.images.append(ref)
        return ref

    def cleanup(self):
        for n in reversed(self.containers):
            try:
                self.client.api.remove_container(n, force=True, v=True)
            except docker.errors.NotFound:
                pass
        for n in reversed(self.networks):
            try:
                self.client.api.remove_network(n)
            except docker.errors.NotFound:
                pass
        for n in reversed(self.volumes):
            try:
                self.client.api.remove_volume(n, force=True)
            except docker.errors.NotFound:
                pass
        for ref in reversed(self.images):
            try:
                self.client.api.remove_image(ref, force=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture
def names(client):
    n = Names(client)
    yield n
    n.cleanup()


@pytest.fixture
def sleeper(client, image, names):
    """A running `sleep 1000` container."""
    c = client.containers.run(
        image, ["sleep", "1000"], detach=True, name=names.container("sleep"), network_mode="none"
    )
    return c
