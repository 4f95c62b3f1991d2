"""Containers through docker-py: lifecycle, logs, attach, exec, top, stats, archives, commit."""

import io
import socket
import ssl
import struct
import tarfile
import threading
import time

import docker
import pytest

from conftest import corral_gap


def read_frames(sock, deadline=30):
    """Reads Docker's multiplexed stream by hand until EOF: 8-byte headers
    [stream, 0, 0, 0, size_be32] then `size` bytes. Returns [(stream, payload)]."""
    sock.settimeout(deadline)
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    frames = []
    while buf:
        assert len(buf) >= 8, f"truncated header: {buf!r}"
        stream, z1, z2, z3, size = struct.unpack(">BBBBI", buf[:8])
        assert (z1, z2, z3) == (0, 0, 0), f"bad header {buf[:8]!r}"
        assert stream in (0, 1, 2), f"bad stream id {stream}"
        payload = buf[8:8 + size]
        assert len(payload) == size, f"truncated frame: want {size}, have {len(payload)}"
        frames.append((stream, payload))
        buf = buf[8 + size:]
    return frames


def raw_socket(sock):
    """The socket under docker-py's attach/exec socket: a SocketIO wrapper over unix
    sockets and plain TCP, the SSLSocket itself over TLS."""
    return getattr(sock, "_sock", sock)


def joined(frames, stream):
    return b"".join(p for s, p in frames if s == stream)


def test_run_returns_output_and_removes(client, image, names):
    name = names.container("run")
    out = client.containers.run(image, ["echo", "hello"], name=name, remove=True,
                                network_mode="none")
    assert out == b"hello\n"
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_run_failure_raises_container_error_with_stderr(client, image, names):
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run(image, ["sh", "-c", "echo boom >&2; exit 3"],
                              name=names.container("fail"), network_mode="none")
    assert e.value.exit_status == 3
    assert b"boom" in e.value.stderr


def test_create_start_stop_remove(client, api, image, names):
    name = names.container("life")
    c = client.containers.create(image, ["sleep", "1000"], name=name, network_mode="none",
                                 labels={"corral.test": "life"}, environment={"FOO": "bar"})
    assert c.status == "created"
    c.start()
    c.reload()
    assert c.status == "running"
    assert c.attrs["State"]["Running"] is True
    assert c.attrs["State"]["Pid"] > 0
    assert "FOO=bar" in c.attrs["Config"]["Env"]
    assert c.labels == {"corral.test": "life"}
    # Starting a running container is a no-op (304 in the API).
    api.start(c.id)
    t0 = time.monotonic()
    c.stop(timeout=1)
    assert time.monotonic() - t0 < 20
    c.reload()
    assert c.status == "exited"
    # sleep ignores SIGTERM as pid 1, so stop killed it after the timeout.
    assert c.attrs["State"]["ExitCode"] == 137
    assert c.attrs["State"]["FinishedAt"] > c.attrs["State"]["StartedAt"]
    listed = client.containers.list(all=True, filters={"label": "corral.test=life"})
    assert [x.id for x in listed] == [c.id]
    assert client.containers.list(filters={"label": "corral.test=life"}) == []
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        c.reload()


def test_remove_running_container_conflicts(client, sleeper):
    with pytest.raises(docker.errors.APIError) as e:
        sleeper.remove()
    assert e.value.response.status_code == 409
    sleeper.remove(force=True)


def test_name_conflict_is_409(client, image, names):
    name = names.container("dup")
    client.containers.create(image, ["true"], name=name, network_mode="none")
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create(image, ["true"], name=name, network_mode="none")
    assert e.value.response.status_code == 409


def test_unknown_container_is_404(client):
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("py-no-such-container")


def test_kill_and_wait(client, sleeper):
    sleeper.kill(signal="SIGKILL")
    assert sleeper.wait(timeout=30) == {"StatusCode": 137, "Error": None}
    sleeper.reload()
    assert sleeper.status == "exited"


def test_wait_reports_exit_code(client, image, names):
    c = client.containers.run(image, ["sh", "-c", "exit 7"], detach=True,
                              name=names.container("wait"), network_mode="none")
    assert c.wait(timeout=30)["StatusCode"] == 7
    assert c.wait(condition="not-running", timeout=30)["StatusCode"] == 7


def test_restart_pause_unpause_rename(client, sleeper, names):
    pid = sleeper.attrs["State"]["Pid"]
    sleeper.pause()
    sleeper.reload()
    assert sleeper.status == "paused"
    sleeper.unpause()
    sleeper.reload()
    assert sleeper.status == "running"
    sleeper.restart(timeout=1)
    sleeper.reload()
    assert sleeper.status == "running"
    assert sleeper.attrs["State"]["Pid"] != pid
    new = names.container("renamed")
    sleeper.rename(new)
    assert client.containers.get(new).id == sleeper.id


def test_logs_stream_follows_until_exit(client, image, names):
    c = client.containers.run(
        image, ["sh", "-c", "for i in 1 2 3; do echo out$i; sleep 0.2; echo err$i >&2; sleep 0.2; done"],
        detach=True, name=names.container("logs"), network_mode="none")
    lines = b"".join(c.logs(stream=True, follow=True))
    # The generator ended by itself when the container exited.
    assert lines.count(b"out") == 3 and lines.count(b"err") == 3, lines
    c.wait(timeout=30)
    assert c.logs(stdout=True, stderr=False) == b"out1\nout2\nout3\n"
    assert c.logs(stdout=False, stderr=True) == b"err1\nerr2\nerr3\n"
    # tail counts lines of both streams before stdout/stderr are picked. The script sleeps
    # between the two writes: two pipes read by two copiers have no order of their own.
    assert c.logs(tail=2) == b"out3\nerr3\n"
    assert c.logs(tail=1, stderr=False) == b""
    stamped = c.logs(timestamps=True, stderr=False).decode().splitlines()
    assert len(stamped) == 3 and stamped[0].endswith(" out1")
    assert stamped[0][:4].isdigit() and "T" in stamped[0].split(" ")[0]


def test_logs_of_tty_container_are_raw(client, image, names):
    c = client.containers.run(image, ["echo", "tty"], detach=True, tty=True,
                              name=names.container("ttylogs"), network_mode="none")
    c.wait(timeout=30)
    assert c.logs() == b"tty\r\n"


def test_attach_socket_frames_parsed_by_hand(client, api, image, names):
    c = client.containers.create(
        image, ["sh", "-c", "read x; echo out:$x; echo err:$x >&2"], stdin_open=True,
        name=names.container("attach"), network_mode="none")
    sock = api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = raw_socket(sock)
    c.start()
    raw.sendall(b"hello\n")
    frames = read_frames(raw)
    sock.close()
    assert joined(frames, 1) == b"out:hello\n"
    assert joined(frames, 2) == b"err:hello\n"
    assert c.wait(timeout=30)["StatusCode"] == 0


def test_attach_stdin_half_close_reaches_process_as_eof(client, api, image, names):
    c = client.containers.create(image, ["sh", "-c", "cat; echo done"], stdin_open=True,
                                 name=names.container("eof"), network_mode="none")
    sock = api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = raw_socket(sock)
    if isinstance(raw, ssl.SSLSocket):
        # Python's SSLSocket cannot half-close (shutdown drops the TLS layer); the docker CLI
        # does it with a close_notify, see transport.rs.
        pytest.skip("no TLS half-close in Python's ssl module")
    c.start()
    raw.sendall(b"abc\n")
    raw.shutdown(socket.SHUT_WR)
    frames = read_frames(raw)
    sock.close()
    assert joined(frames, 1) == b"abc\ndone\n"
    assert c.wait(timeout=30)["StatusCode"] == 0


def test_attach_tty_is_raw(client, api, image, names):
    c = client.containers.create(image, ["sh", "-c", "echo tty-out"], tty=True,
                                 name=names.container("attachtty"), network_mode="none")
    sock = api.attach_socket(c.id, params={"stdout": 1, "stderr": 1, "stream": 1})
    raw = raw_socket(sock)
    c.start()
    raw.settimeout(30)
    data = b""
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data == b"tty-out\r\n"


def test_exec_run(client, sleeper):
    r = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert r.exit_code == 3
    assert b"out\n" in r.output and b"err\n" in r.output
    r = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert r.exit_code == 0
    assert r.output == (b"out\n", b"err\n")
    r = sleeper.exec_run("env", environment={"PYVAR": "1"}, workdir="/tmp", user="nobody")
    assert b"PYVAR=1" in r.output
    assert sleeper.exec_run("pwd", workdir="/tmp").output == b"/tmp\n"
    assert sleeper.exec_run("id -u", user="nobody").output == b"65534\n"
    r = sleeper.exec_run(["sh", "-c", "[ -t 1 ] && echo is-a-tty"], tty=True)
    assert r.output == b"is-a-tty\r\n"


def test_exec_run_stream(client, sleeper):
    r = sleeper.exec_run(["sh", "-c", "for i in 1 2 3; do echo s$i; sleep 0.2; done"],
                         stream=True)
    assert r.exit_code is None
    assert b"".join(r.output) == b"s1\ns2\ns3\n"


def test_exec_low_level_inspect_and_exit_code(api, sleeper):
    e = api.exec_create(sleeper.id, ["sh", "-c", "exit 5"])
    assert api.exec_start(e["Id"]) == b""
    info = api.exec_inspect(e["Id"])
    assert info["ExitCode"] == 5 and info["Running"] is False
    assert info["ContainerID"] == sleeper.id
    # Detached exec returns at once.
    e = api.exec_create(sleeper.id, ["sh", "-c", "sleep 0.3; exit 4"])
    api.exec_start(e["Id"], detach=True)
    for _ in range(100):
        info = api.exec_inspect(e["Id"])
        if not info["Running"] and info["ExitCode"] is not None:
            break
        time.sleep(0.1)
    assert info["ExitCode"] == 4


def test_unstarted_exec_sessions_are_dropped_when_the_container_stops(api, sleeper):
    # dockerd forgets the exec sessions still registered with a container when its
    # process ends (created and never started, or running); finished ones stay
    # inspectable.
    unstarted = api.exec_create(sleeper.id, ["true"])["Id"]
    done = api.exec_create(sleeper.id, ["true"])["Id"]
    api.exec_start(done)
    assert api.exec_inspect(unstarted)["Running"] is False
    sleeper.kill()
    sleeper.wait()
    # dockerd cleans up just after the exit is recorded.
    for _ in range(50):
        try:
            api.exec_inspect(unstarted)
        except docker.errors.NotFound:
            break
        time.sleep(0.1)
    with pytest.raises(docker.errors.NotFound):
        api.exec_inspect(unstarted)
    assert api.exec_inspect(done)["ExitCode"] == 0


def test_exec_socket_frames(api, sleeper):
    e = api.exec_create(sleeper.id, ["sh", "-c", "read x; echo got:$x; echo e >&2"],
                        stdin=True)
    sock = api.exec_start(e["Id"], socket=True)
    raw = raw_socket(sock)
    raw.sendall(b"ping\n")
    frames = read_frames(raw)
    sock.close()
    assert joined(frames, 1) == b"got:ping\n"
    assert joined(frames, 2) == b"e\n"


def test_top(sleeper):
    top = sleeper.top()
    assert "PID" in top["Titles"] and "CMD" in top["Titles"]
    cmds = [p[top["Titles"].index("CMD")] for p in top["Processes"]]
    assert any("sleep 1000" in c for c in cmds), cmds
    ps = sleeper.top(ps_args="-o pid,comm")
    assert ps["Titles"] == ["PID", "COMMAND"]


def test_stats_one_shot(api, sleeper):
    s = api.stats(sleeper.id, stream=False, one_shot=True)
    assert s["id"] == sleeper.id
    assert s["name"] == "/" + sleeper.name
    assert s["memory_stats"]["usage"] > 0
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["pids_stats"]["current"] >= 1
    assert "precpu_stats" in s


def test_stats_stream_yields_samples(api, sleeper):
    stream = api.stats(sleeper.id, decode=True, stream=True)
    first = next(stream)
    second = next(stream)
    stream.close()
    assert first["id"] == sleeper.id
    # Each sample carries the previous one, so clients can compute CPU %.
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == \
        first["cpu_stats"]["cpu_usage"]["total_usage"]


def make_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_put_and_get_archive(sleeper):
    assert sleeper.put_archive("/tmp", make_tar({"hello.txt": b"hi there\n",
                                                 "sub/x.txt": b"x"})) is True
    assert sleeper.exec_run("cat /tmp/hello.txt").output == b"hi there\n"
    bits, stat = sleeper.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt"
    assert stat["size"] == 9
    data = b"".join(bits)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        member = t.getmember("hello.txt")
        assert t.extractfile(member).read() == b"hi there\n"
    bits, stat = sleeper.get_archive("/tmp/sub")
    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
        assert t.extractfile("sub/x.txt").read() == b"x"
    with pytest.raises(docker.errors.NotFound):
        sleeper.get_archive("/no/such/path")
    with pytest.raises(docker.errors.NotFound):
        sleeper.put_archive("/no/such/dir", make_tar({"a": b"a"}))


def test_commit(client, sleeper, names):
    sleeper.exec_run("sh -c 'echo committed > /marker'")
    repo = names.image("py-commit-" + names.prefix)
    img = sleeper.commit(repository=repo, tag="v1", message="by docker-py",
                         conf={"Env": ["COMMITTED=yes"]}, changes=["LABEL from=commit"])
    names.image(repo + ":v1")
    assert repo + ":v1" in img.tags
    assert img.labels.get("from") == "commit"
    assert "COMMITTED=yes" in img.attrs["Config"]["Env"]
    out = client.containers.run(repo + ":v1", ["cat", "/marker"], remove=True,
                                network_mode="none")
    assert out == b"committed\n"


def test_diff_and_export(sleeper):
    sleeper.exec_run("sh -c 'echo x > /newfile'")
    changes = sleeper.diff()
    assert {"Path": "/newfile", "Kind": 1} in changes
    data = b"".join(sleeper.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert "newfile" in t.getnames()
        assert "bin/busybox" in t.getnames() or "bin/sh" in t.getnames()


def test_prune_removes_stopped_containers_matching_filters(client, image, names, sleeper):
    c = client.containers.run(image, ["true"], detach=True, name=names.container("prune"),
                              network_mode="none", labels={"corral.prune": names.prefix})
    other = client.containers.run(image, ["true"], detach=True,
                                  name=names.container("keep"), network_mode="none",
                                  labels={"corral.prune": "keep-" + names.prefix})
    c.wait(timeout=30)
    other.wait(timeout=30)
    r = client.containers.prune(filters={"label": "corral.prune=" + names.prefix})
    assert r["ContainersDeleted"] == [c.id]
    # The other label and the running container are untouched.
    other.reload()
    sleeper.reload()
    assert sleeper.status == "running"
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.prune(filters={"bogus": "x"})
    assert e.value.response.status_code == 400


def test_update_resources_and_restart_policy(client, sleeper):
    sleeper.update(mem_limit="64m", memswap_limit="128m", cpu_shares=512,
                   restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    sleeper.reload()
    hc = sleeper.attrs["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024
    assert hc["CpuShares"] == 512
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # The running container's cgroup has the new limit.
    out = sleeper.exec_run("cat /sys/fs/cgroup/memory/memory.limit_in_bytes").output
    assert out == b"67108864\n"
    with pytest.raises(docker.errors.APIError) as e:
        sleeper.update(mem_limit="1k")
    assert e.value.response.status_code == 400


def test_attach_detach_keys_end_the_session_not_the_container(client, api, image, names):
    c = client.containers.create(image, ["sh", "-c", "cat"], stdin_open=True, tty=True,
                                 name=names.container("detachkeys"), network_mode="none")
    sock = api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1,
                                           "detachKeys": "ctrl-a"})
    raw = raw_socket(sock)
    c.start()
    raw.sendall(b"\x01")
    raw.settimeout(10)
    try:
        while raw.recv(65536):
            pass
        ended = True
    except socket.timeout:
        ended = False
    sock.close()
    assert ended, "the attach stream stayed open after the detach key"
    c.reload()
    assert c.status == "running"


def test_list_filter_by_volume(client, image, names):
    vol = names.volume("flt")
    client.volumes.create(vol)
    c = client.containers.create(image, ["true"], name=names.container("withvol"),
                                 volumes={vol: {"bind": "/v", "mode": "rw"}},
                                 network_mode="none")
    client.containers.create(image, ["true"], name=names.container("novol"),
                             network_mode="none")
    found = client.containers.list(all=True, filters={"volume": vol})
    assert [x.id for x in found] == [c.id]
    found = client.containers.list(all=True, filters={"volume": "/v", "name": names.prefix})
    assert [x.id for x in found] == [c.id]
    assert client.containers.list(all=True, filters={"volume": "py-no-such-volume"}) == []


def test_exec_detach_keys_end_the_session_not_the_process(api, sleeper):
    e = api.exec_create(sleeper.id, ["sh", "-c", "cat; echo never"], stdin=True, tty=True,
                        detach_keys="ctrl-x")
    sock = api.exec_start(e["Id"], socket=True, tty=True)
    raw = raw_socket(sock)
    raw.sendall(b"\x18")
    raw.settimeout(10)
    data = b""
    try:
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                break
            data += chunk
        ended = True
    except socket.timeout:
        ended = False
    sock.close()
    assert ended, "the exec stream stayed open after the detach key"
    assert b"never" not in data
    with pytest.raises(docker.errors.APIError) as err:
        api.exec_create(sleeper.id, ["true"], detach_keys="ctrl-1")
    # dockerd 20.10 answers 500 here, newer ones 400 (Corral); the message is the same.
    assert err.value.response.status_code in (400, 500)
    assert "Invalid escape keys (ctrl-1) provided" in str(err.value)


def test_wait_removed_with_auto_remove(client, api, image, names):
    name = names.container("autorm")
    c = client.containers.create(image, ["sh", "-c", "sleep 0.3; exit 2"], name=name,
                                 auto_remove=True, network_mode="none")
    # Registered before start, as the docker CLI does for --rm.
    waiter = {}

    def wait():
        waiter["r"] = api.wait(c.id, timeout=30, condition="removed")

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    c.start()
    t.join(timeout=30)
    assert waiter["r"]["StatusCode"] == 2
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)
