"""Networks and volumes through docker-py: create, list with filters, inspect, remove,
prune."""

import docker
import pytest

from conftest import corral_gap


def test_network_create_list_inspect_remove(client, names):
    name = names.network("net")
    net = client.networks.create(name, driver="bridge", labels={"corral.py": names.prefix},
                                 check_duplicate=True)
    assert net.name == name
    net.reload()
    assert net.attrs["Driver"] == "bridge"
    assert net.attrs["Labels"] == {"corral.py": names.prefix}
    assert net.attrs["Scope"] == "local"
    assert net.attrs["IPAM"]["Config"], net.attrs["IPAM"]
    assert net.id in [n.id for n in client.networks.list()]
    assert client.networks.get(net.id).name == name
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(name)


def test_network_list_filters(client, names):
    name = names.network("flt")
    net = client.networks.create(name, labels={"corral.py": names.prefix})
    assert [n.id for n in client.networks.list(names=[name])] == [net.id]
    assert [n.id for n in client.networks.list(filters={"label": "corral.py=" + names.prefix})] \
        == [net.id]
    assert client.networks.list(filters={"label": "corral.py=other"}) == []


def test_network_with_subnet(client, names):
    name = names.network("subnet")
    ipam = docker.types.IPAMConfig(pool_configs=[
        docker.types.IPAMPool(subnet="10.231.7.0/24", gateway="10.231.7.1")])
    net = client.networks.create(name, ipam=ipam)
    cfg = net.attrs["IPAM"]["Config"][0]
    assert cfg["Subnet"] == "10.231.7.0/24"
    assert cfg["Gateway"] == "10.231.7.1"


def test_network_prune(client, names):
    keep = names.network("keep")
    gone = names.network("gone")
    client.networks.create(keep, labels={"corral.py.prune": "no"})
    client.networks.create(gone, labels={"corral.py.prune": names.prefix})
    r = client.networks.prune(filters={"label": "corral.py.prune=" + names.prefix})
    assert r["NetworksDeleted"] == [gone]
    assert client.networks.get(keep).name == keep
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(gone)


def test_unknown_network_is_404(client):
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("py-no-such-network")


def test_volume_create_list_inspect_remove(client, image, names):
    name = names.volume("vol")
    vol = client.volumes.create(name, labels={"corral.py": names.prefix})
    assert vol.name == name
    assert vol.attrs["Driver"] == "local"
    assert vol.attrs["Mountpoint"].endswith("/" + name + "/_data")
    assert vol.attrs["Labels"] == {"corral.py": names.prefix}
    assert [v.name for v in client.volumes.list(filters={"label": "corral.py=" + names.prefix})] \
        == [name]
    assert name in [v.name for v in client.volumes.list(filters={"name": name})]
    assert client.volumes.get(name).name == name
    # A container writes through it, another reads.
    client.containers.run(image, ["sh", "-c", "echo data > /v/f"], remove=True,
                          volumes={name: {"bind": "/v", "mode": "rw"}}, network_mode="none")
    out = client.containers.run(image, ["cat", "/v/f"], remove=True,
                                volumes={name: {"bind": "/v", "mode": "ro"}},
                                network_mode="none")
    assert out == b"data\n"
    vol.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(name)


def test_volume_in_use_cannot_be_removed(client, image, names):
    name = names.volume("busy")
    client.volumes.create(name)
    client.containers.create(image, ["true"], name=names.container("holder"),
                             volumes={name: {"bind": "/v", "mode": "rw"}}, network_mode="none")
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.get(name).remove()
    assert e.value.response.status_code == 409


def test_volume_prune(client, api, names):
    name = names.volume("prune")
    client.volumes.create(name, labels={"corral.py.prune": names.prefix})
    flt = {"label": "corral.py.prune=" + names.prefix}
    # From API 1.42 prune removes only anonymous volumes unless `all` is set.
    if docker.utils.version_gte(api.api_version, "1.42"):
        assert not client.volumes.prune(filters=flt)["VolumesDeleted"]
        flt["all"] = "true"
    r = client.volumes.prune(filters=flt)
    assert r["VolumesDeleted"] == [name]


def test_unknown_volume_is_404(client):
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("py-no-such-volume")
