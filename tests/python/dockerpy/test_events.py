"""Events through docker-py: a replayed window with filters, and a live stream."""

import threading
import time

from conftest import SUBJECT  # noqa: F401


def test_events_window_with_filters(client, image, names):
    since = int(time.time()) - 1
    name = names.container("ev")
    c = client.containers.run(image, ["true"], detach=True, name=name, network_mode="none")
    c.wait(timeout=30)
    c.remove()
    until = int(time.time()) + 1
    time.sleep(1.1)
    evs = list(client.events(since=since, until=until, decode=True,
                             filters={"type": "container", "container": name}))
    actions = [e["Action"] for e in evs]
    for a in ("create", "start", "die", "destroy"):
        assert a in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die") \
        < actions.index("destroy")
    die = evs[actions.index("die")]
    assert die["Type"] == "container"
    assert die["Actor"]["ID"] == c.id
    assert die["Actor"]["Attributes"]["name"] == name
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["status"] == "die" and die["id"] == c.id
    assert die["timeNano"] // 10**9 == die["time"]
    # An event filter narrows to one action.
    only = list(client.events(since=since, until=until, decode=True,
                              filters={"container": name, "event": "start"}))
    assert [e["Action"] for e in only] == ["start"]


def test_events_stream_live(client, image, names):
    name = names.container("live")
    got = []
    stream = client.events(decode=True, filters={"container": name, "event": "start"})

    def reader():
        for e in stream:
            got.append(e)
            break

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.5)
    client.containers.run(image, ["true"], detach=True, name=name, network_mode="none")
    t.join(timeout=30)
    stream.close()
    assert got and got[0]["Action"] == "start"
    assert got[0]["Actor"]["Attributes"]["name"] == name


def test_image_events(client, image, names):
    since = int(time.time()) - 1
    alias = "py-ev-" + names.prefix + ":t"
    names.image(alias)
    client.images.get(image).tag(alias)
    client.images.remove(alias)
    until = int(time.time()) + 1
    evs = list(client.events(since=since, until=until, decode=True,
                             filters={"type": "image"}))
    actions = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in evs]
    assert ("tag", alias) in actions, actions
    assert ("untag", alias) in actions or any(a == "untag" for a, _ in actions), actions
