"""System endpoints: ping, version negotiation, info."""

import docker

from conftest import SUBJECT


def test_ping(client, api):
    assert client.ping() is True
    # The raw ping answers OK with the API version header clients negotiate from.
    resp = api.get(api.base_url + "/_ping")
    assert resp.status_code == 200
    assert resp.text == "OK"
    assert resp.headers["Api-Version"]
    head = api.head(api.base_url + "/_ping")
    assert head.status_code == 200
    assert head.headers["Api-Version"] == resp.headers["Api-Version"]


def test_version_negotiation(client, api):
    v = client.version()
    assert v["Os"] == "linux"
    assert v["ApiVersion"]
    assert v["MinAPIVersion"]
    # docker-py's "auto" picked the server's version.
    assert api.api_version == v["ApiVersion"]


def test_pinned_old_api_version_works():
    # docker-compose 1.29 pins versions down to 1.25.
    old = docker.APIClient(version="1.25", **docker.utils.kwargs_from_env())
    try:
        assert old.version()["ApiVersion"]
        assert isinstance(old.containers(all=True), list)
    finally:
        old.close()


def test_too_old_api_version_is_refused(api):
    # docker-py itself refuses versions below 1.24; a raw request shows the daemon's answer.
    resp = api.get(api.base_url + "/v1.11/containers/json")
    assert resp.status_code == 400
    # dockerd 20.10 answers in plain text here; the words are what clients show.
    assert "client version 1.11 is too old" in resp.text


def test_info(client):
    info = client.info()
    for key in ("ID", "Containers", "ContainersRunning", "Images", "Driver", "OSType",
                "Architecture", "NCPU", "MemTotal", "ServerVersion", "Name", "DockerRootDir"):
        assert key in info, key
    assert info["OSType"] == "linux"
    assert info["NCPU"] >= 1
    assert SUBJECT in ("corral", "docker")
