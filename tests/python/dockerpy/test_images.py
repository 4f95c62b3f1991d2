"""Images through docker-py: pull from the local registry, list, inspect, tag, remove,
save/load, history, prune."""

import docker
import pytest


def split_ref(ref):
    repo, tag = ref.rsplit(":", 1)
    return repo, tag


def test_pull_list_inspect_tag_remove(client, api, pull_image, names):
    repo, tag = split_ref(pull_image)
    names.image(pull_image)
    img = client.images.pull(repo, tag=tag)
    assert pull_image in img.tags
    assert img.id.startswith("sha256:")
    attrs = img.attrs
    assert attrs["RepoDigests"] and attrs["RepoDigests"][0].startswith(repo + "@sha256:")
    assert attrs["RootFS"]["Type"] == "layers" and attrs["RootFS"]["Layers"]
    assert attrs["Config"]["Cmd"]
    assert attrs["Os"] == "linux" and attrs["Architecture"]
    assert attrs["Size"] > 0

    # Pull progress arrives as a JSON stream ending in a status line.
    events = list(api.pull(repo, tag=tag, stream=True, decode=True))
    assert any("Status" in e.get("status", "") or "up to date" in e.get("status", "")
               for e in events), events

    listed = client.images.list(name=repo)
    assert [i.id for i in listed] == [img.id]
    assert img.id in [i.id for i in client.images.list(filters={"reference": repo + ":*"})]
    assert img.id in [i.id for i in client.images.list()]

    new = "py-tagged-" + names.prefix
    names.image(new + ":t1")
    assert img.tag(new, tag="t1") is True
    img.reload()
    assert new + ":t1" in img.tags
    assert client.images.get(new + ":t1").id == img.id

    removed = api.remove_image(new + ":t1")
    assert {"Untagged": new + ":t1"} in removed
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(new + ":t1")
    history = img.history()
    assert history and "Created" in history[0]
    client.images.remove(pull_image)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(pull_image)


def test_pull_unknown_image_fails(client, pull_image):
    repo, _ = split_ref(pull_image)
    with pytest.raises(docker.errors.NotFound):
        client.images.pull(repo, tag="no-such-tag")


def test_remove_image_used_by_container_conflicts(client, image, names):
    alias = "py-inuse-" + names.prefix + ":x"
    names.image(alias)
    client.images.get(image).tag(alias)
    client.containers.create(alias, ["true"], name=names.container("inuse"),
                             network_mode="none")
    # The tag can go (another tag keeps the image), but the image id cannot.
    with pytest.raises(docker.errors.APIError) as e:
        client.images.remove(client.images.get(image).id)
    assert e.value.response.status_code == 409


def test_save_and_load(client, image, names):
    alias = "py-saved-" + names.prefix + ":v1"
    names.image(alias)
    img = client.images.get(image)
    img.tag(alias)
    data = b"".join(client.images.get(alias).save(named=alias))
    assert len(data) > 1024
    client.images.remove(alias)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(alias)
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [img.id]
    assert alias in client.images.get(alias).tags


def test_image_inspect_unknown_is_404(client):
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("py-no-such-image:latest")


def test_build_returns_the_image_and_its_log(client, image, names, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM %s\nARG WHO=nobody\nCOPY f.txt /f.txt\nRUN echo built by $WHO > /who\n"
        "LABEL stage=py\nCMD [\"cat\", \"/who\"]\n" % image)
    (tmp_path / "f.txt").write_text("file\n")
    tag = "py-built-" + names.prefix + ":v1"
    names.image(tag)
    img, logs = client.images.build(path=str(tmp_path), tag=tag, buildargs={"WHO": "py"},
                                    rm=True)
    logs = list(logs)
    text = "".join(l.get("stream", "") for l in logs)
    assert "Step 1/6 : FROM " in text, text
    assert "Successfully built " + img.short_id.split(":")[1] in text, text
    assert {"aux": {"ID": img.id}} in logs, logs
    assert tag in img.tags
    assert img.labels["stage"] == "py"
    out = client.containers.run(tag, remove=True, network_mode="none")
    assert out == b"built by py\n"
    # A failing RUN raises BuildError with dockerd's message.
    (tmp_path / "Dockerfile").write_text("FROM %s\nRUN exit 3\n" % image)
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(path=str(tmp_path), forcerm=True)
    assert "returned a non-zero code: 3" in str(e.value)
