"""The ``camio`` command, run as a subprocess against a real daemon on a loopback port."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import aiohttp
import yaml

from daemonproc import CLI, Result, Starter, camio, clean_env, free_port

PASSWORD = "correct-horse-1"
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z #(\d+) (\S+) (\S+) ")


def lines(result: Result) -> list[str]:
    return [line for line in result.out.splitlines() if line.strip()]


def port_line(result: Result, port: str) -> str:
    found = [line for line in lines(result) if line.split()[0] == port]
    assert len(found) == 1, result
    return found[0]


async def digest_status(url: str, user: str, password: str) -> int:
    middleware = aiohttp.DigestAuthMiddleware(user, password)
    async with (
        aiohttp.ClientSession(middlewares=(middleware,)) as session,
        session.get(url + "/api/v1/ports") as resp,
    ):
        return resp.status


# -- run and users ----------------------------------------------------------------------------


async def test_first_run_explains_how_to_log_in(tmp_path: Path, daemons: Starter) -> None:
    data = tmp_path / "data"
    port = free_port()
    daemon = await daemons(data, listen=f"127.0.0.1:{port}")
    assert daemon.url == f"http://127.0.0.1:{port}"
    assert f"listening on http://127.0.0.1:{port}" in daemon.banner
    assert "no account yet" in daemon.banner
    assert "no default password" in daemon.banner
    assert "camio user add admin --role admin" in daemon.banner
    assert "CAMIO_ADMIN_USER" in daemon.banner
    assert str(data.resolve()) in daemon.banner
    assert json.loads((data / "run.json").read_text())["url"] == daemon.url

    async with aiohttp.ClientSession() as session, session.get(daemon.url + "/api/v1/ports") as r:
        assert r.status == 401

    # Create the administrator while the daemon runs, the password on stdin.
    added = await camio("user", "add", "admin", "--role", "admin", data=data, stdin=PASSWORD + "\n")
    assert added.rc == 0, added
    assert "admin" in added.out
    assert await digest_status(daemon.url, "admin", PASSWORD) == 200
    assert await digest_status(daemon.url, "admin", "wrong-password") == 401

    listed = await camio("user", "list", data=data)
    assert listed.rc == 0
    assert listed.out.split()[:2] == ["admin", "admin"]
    assert PASSWORD not in listed.out

    assert await daemon.stop() == 0
    assert "stopping" in daemon.stderr()
    assert not (data / "run.json").exists()

    again = await daemons(data, listen=f"127.0.0.1:{port}")
    assert "no account yet" not in again.banner
    assert "log in with your camio account" in again.banner
    assert await again.stop() == 0


async def test_user_add_refusals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    short = await camio("user", "add", "bob", data=data, stdin="short\n")
    assert short.rc == 1
    assert "password" in short.err
    bad_role = await camio("user", "add", "bob", "--role", "god", data=data, stdin=PASSWORD)
    assert bad_role.rc == 2
    assert "role" in bad_role.err
    ok = await camio("user", "add", "bob", "--role", "operator", data=data, stdin=PASSWORD)
    assert ok.rc == 0, ok
    dup = await camio("user", "add", "bob", data=data, stdin=PASSWORD)
    assert dup.rc == 1
    assert "bob" in dup.err


async def test_admin_from_the_environment(tmp_path: Path, daemons: Starter) -> None:
    env = clean_env(CAMIO_ADMIN_USER="root", CAMIO_ADMIN_PASSWORD=PASSWORD)
    daemon = await daemons(tmp_path / "data", env=env)
    assert "no account yet" not in daemon.banner
    assert await digest_status(daemon.url, "root", PASSWORD) == 200
    assert PASSWORD not in daemon.banner
    assert await daemon.stop() == 0
    assert PASSWORD not in daemon.stderr()


async def run_to_exit(data: Path, listen: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        "--data",
        str(data),
        "--listen",
        listen,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    async with asyncio.timeout(15):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_port_already_in_use_is_a_clear_error(tmp_path: Path, daemons: Starter) -> None:
    first = await daemons(tmp_path / "a")
    port = first.url.rsplit(":", 1)[1]
    second = await run_to_exit(tmp_path / "b", f"127.0.0.1:{port}")
    assert second.rc == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.err
    assert "Traceback" not in second.err
    assert await first.stop() == 0


async def test_bad_listen_address_and_bad_configuration(tmp_path: Path) -> None:
    bad_listen = await run_to_exit(tmp_path / "a", "localhost")
    assert bad_listen.rc == 2
    assert "HOST:PORT" in bad_listen.err
    data = tmp_path / "b"
    data.mkdir()
    (data / "config.yaml").write_text(
        "revision: 4\ninputs:\n  - id: in1\n    name: Door\n    debounce_on_ms: soon\n"
    )
    bad_config = await run_to_exit(data, "127.0.0.1:0")
    assert bad_config.rc == 2
    assert "inputs.0.debounce_on_ms" in bad_config.err
    assert "Traceback" not in bad_config.err
    assert "listening" not in bad_config.out
    # The file is left as it was, for the installer to fix.
    assert "soon" in (data / "config.yaml").read_text()


async def test_one_daemon_per_data_directory(tmp_path: Path, daemons: Starter) -> None:
    """A second 'camio run' on the same data directory is refused, and the first one stays
    reachable for the CLI (its token and run.json untouched)."""
    data = tmp_path / "data"
    first = await daemons(data)
    token = first.token
    run_info = (data / "run.json").read_text()
    for listen in (first.url.removeprefix("http://"), "127.0.0.1:0"):
        second = await run_to_exit(data, listen)
        assert second.rc == 2
        assert "another camio daemon is running" in second.err
        assert "Traceback" not in second.err
    assert first.token == token
    assert (data / "run.json").read_text() == run_info
    status = await camio("io", "status", data=data)
    assert status.rc == 0, status
    assert await first.stop() == 0
    # Once it stopped, the directory is free again.
    again = await daemons(data)
    assert await again.stop() == 0


# -- io, sim, events --------------------------------------------------------------------------


async def test_io_sim_and_events(tmp_path: Path, daemons: Starter) -> None:
    data = tmp_path / "data"
    daemon = await daemons(data)

    status = await camio("io", "status", data=data)
    assert status.rc == 0, status
    assert [line.split()[0] for line in lines(status)] == ["in1", "in2", "out1"]
    assert port_line(status, "out1").split()[1:4] == ["output", "idle", "open"]
    assert port_line(status, "in1").split()[1:4] == ["input", "idle", "open"]

    as_json = await camio("io", "status", "--json", data=data)
    ports = json.loads(as_json.out)["ports"]
    assert [p["id"] for p in ports] == ["in1", "in2", "out1"]

    on = await camio("io", "set", "out1", "on", "--for", "1000", data=data)
    assert on.rc == 0, on
    assert port_line(on, "out1").split()[1:4] == ["output", "ACTIVE", "closed"]
    assert "api" in on.out and "user=@local" in on.out
    code, port = await daemon.api("GET", "/api/v1/ports/out1")
    assert code == 200
    assert port["active"] is True
    assert 0 < port["remaining_ms"] <= 1000
    assert port["cause"]["user"] == "@local"

    closed = await camio("sim", "input", "in1", "close", data=data)
    assert closed.rc == 0, closed
    # The wire is closed at once; the input follows after its 50 ms debounce.
    line = port_line(closed, "in1")
    assert line.split()[3] == "closed" or "debouncing: wire closed" in line, line
    async with asyncio.timeout(5):
        while not (await daemon.api("GET", "/api/v1/ports/in1"))[1]["active"]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    status = await camio("io", "status", data=data)
    assert port_line(status, "in1").split()[1:4] == ["input", "ACTIVE", "closed"]

    bounce = await camio("sim", "fault", "in2", "bounce", data=data)
    assert bounce.rc == 0, bounce
    assert port_line(bounce, "in2").split()[1] == "input"
    edges = await camio(
        "sim", "fault", "in2", "bounce", "--edges", "3", "--interval-ms", "1", data=data
    )
    assert edges.rc == 0, edges
    stuck = await camio("sim", "fault", "in1", "stuck", data=data)
    assert stuck.rc == 0

    tail = await camio("events", "tail", "-n", "5", "--no-follow", data=data)
    assert tail.rc == 0, tail
    printed = lines(tail)
    assert len(printed) == 5
    ids = []
    for line in printed:
        match = EVENT_LINE.match(line)
        assert match, line
        ids.append(int(match.group(1)))
    assert ids == sorted(ids) and len(set(ids)) == 5
    code, body = await daemon.api("GET", f"/api/v1/events?before={ids[-1] + 1}&order=desc&limit=5")
    assert [e["id"] for e in reversed(body["events"])] == ids
    assert any(" io/output out1 " in line for line in printed) or ids[0] > 2

    only_out = await camio("events", "tail", "-n", "5", "--no-follow", "--topic", "io/output")
    assert only_out.rc == 1  # no --data: no daemon for ./camio-data
    only_out = await camio(
        "events", "tail", "-n", "5", "--no-follow", "--topic", "io/output", data=data
    )
    assert only_out.rc == 0
    assert lines(only_out)
    assert all(" io/output out1 " in line for line in lines(only_out))

    assert await daemon.stop() == 0


async def test_io_errors_are_messages(tmp_path: Path, daemons: Starter) -> None:
    data = tmp_path / "data"
    await daemons(data)
    unknown = await camio("io", "set", "out9", "on", data=data)
    assert unknown.rc == 1
    assert "404" in unknown.err and "out9" in unknown.err
    on_input = await camio("io", "set", "in1", "on", data=data)
    assert on_input.rc == 1
    assert "409" in on_input.err
    not_sim = await camio("sim", "input", "out1", "close", data=data)
    assert not_sim.rc == 1
    assert "404" in not_sim.err
    for result in (unknown, on_input, not_sim):
        assert "Traceback" not in result.err


async def test_cli_with_a_user_account(tmp_path: Path, daemons: Starter) -> None:
    """CAMIO_USER/CAMIO_PASSWORD replace the local token: the account's role applies."""
    data = tmp_path / "data"
    await daemons(data)
    for name, role in (("op", "operator"), ("eve", "viewer")):
        added = await camio("user", "add", name, "--role", role, data=data, stdin=PASSWORD)
        assert added.rc == 0, added
    as_op = clean_env(CAMIO_USER="op", CAMIO_PASSWORD=PASSWORD)
    on = await camio("io", "set", "out1", "on", data=data, env=as_op)
    assert on.rc == 0, on
    assert "user=op" in port_line(on, "out1")
    as_viewer = clean_env(CAMIO_USER="eve", CAMIO_PASSWORD=PASSWORD)
    refused = await camio("io", "set", "out1", "off", data=data, env=as_viewer)
    assert refused.rc == 1
    assert "403" in refused.err
    assert (await camio("io", "status", data=data, env=as_viewer)).rc == 0
    wrong = clean_env(CAMIO_USER="op", CAMIO_PASSWORD="not-" + PASSWORD)
    denied = await camio("io", "status", data=data, env=wrong)
    assert denied.rc == 1
    assert "401" in denied.err


async def test_events_tail_follows_live(tmp_path: Path, daemons: Starter) -> None:
    data = tmp_path / "data"
    daemon = await daemons(data)
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "events",
        "tail",
        "--topic",
        "io/virtual_input",
        "--data",
        str(data),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(10):
            # First the current state of every virtual input (initialized), then live changes.
            for number in range(1, 33):
                line = (await proc.stdout.readline()).decode()
                assert f"io/virtual_input {number} initialized" in line, line
            code, _ = await daemon.api("PUT", "/api/v1/virtual-inputs/6", {"active": True})
            assert code == 200
            line = (await proc.stdout.readline()).decode()
        assert "io/virtual_input 6 changed" in line
        assert '"active":true' in line
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
        assert proc.returncode in (0, 130)
        assert b"Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- config -----------------------------------------------------------------------------------


async def test_config_export_validate_import_with_the_daemon(
    tmp_path: Path, daemons: Starter
) -> None:
    data = tmp_path / "data"
    daemon = await daemons(data)

    exported = await camio("config", "export", data=data)
    assert exported.rc == 0, exported
    doc = yaml.safe_load(exported.out)
    assert doc["revision"] == 1
    assert [p["id"] for p in doc["inputs"]] == ["in1", "in2"]

    target = tmp_path / "site.yaml"
    assert (await camio("config", "export", "-o", str(target), data=data)).rc == 0
    assert yaml.safe_load(target.read_text()) == doc

    doc["device"]["name"] = "Warehouse"
    doc["outputs"][0]["alarm_time_ms"] = 2500
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    valid = await camio("config", "validate", str(target), data=data)
    assert valid.rc == 0, valid
    assert "valid (2 inputs, 1 outputs, 0 rules, 0 schedules)" in valid.out

    imported = await camio("config", "import", str(target), data=data)
    assert imported.rc == 0, imported
    assert "configuration applied, revision 2" in imported.out
    _, body = await daemon.api("GET", "/api/v1/config")
    assert body["revision"] == 2
    assert body["config"]["device"]["name"] == "Warehouse"
    assert body["config"]["outputs"][0]["alarm_time_ms"] == 2500
    assert yaml.safe_load((data / "config.yaml").read_text())["revision"] == 2

    # An invalid file: refused with the field named, nothing applied.
    doc["inputs"][1]["debounce_on_ms"] = -1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    invalid = await camio("config", "validate", str(bad), data=data)
    assert invalid.rc == 2
    assert "inputs.1.debounce_on_ms" in invalid.err
    refused = await camio("config", "import", str(bad), data=data)
    assert refused.rc == 2
    assert "inputs.1.debounce_on_ms" in refused.err
    broken = tmp_path / "broken.yaml"
    broken.write_text("inputs: [\n")
    syntax = await camio("config", "validate", str(broken), data=data)
    assert syntax.rc == 2
    assert "line" in syntax.err
    for result in (invalid, refused, syntax):
        assert "Traceback" not in result.err
    _, body = await daemon.api("GET", "/api/v1/config")
    assert body["revision"] == 2

    assert await daemon.stop() == 0


async def test_config_offline_and_clean_stop(tmp_path: Path, daemons: Starter) -> None:
    """SIGINT stops the daemon cleanly; while it is down, export/import work on the file;
    the next start runs the imported configuration and the log shows the stop."""
    data = tmp_path / "data"
    daemon = await daemons(data)
    on = await camio("io", "set", "out1", "on", data=data)
    assert on.rc == 0
    _, before_stop = await daemon.api("GET", "/api/v1/events?limit=1000")
    assert await daemon.stop(signal.SIGINT) == 0
    assert not (data / "run.json").exists()

    down = await camio("io", "status", data=data)
    assert down.rc == 1
    assert "no daemon is running" in down.err

    exported = await camio("config", "export", data=data)
    assert exported.rc == 0, exported
    doc = yaml.safe_load(exported.out)
    assert doc["revision"] == 1
    doc["device"]["name"] = "Offline edit"
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(doc, sort_keys=False))
    imported = await camio("config", "import", str(site), data=data)
    assert imported.rc == 0, imported
    assert "daemon not running: configuration saved, revision 2" in imported.out

    again = await daemons(data)
    assert "Offline edit" in again.banner
    _, config = await again.api("GET", "/api/v1/config")
    assert config["revision"] == 2
    assert config["config"]["device"]["name"] == "Offline edit"
    # power_on "off": the output that was on at the stop is idle now.
    _, port = await again.api("GET", "/api/v1/ports/out1")
    assert port["active"] is False
    _, body = await again.api("GET", "/api/v1/events?limit=1000")
    events = body["events"]
    seen = {e["id"] for e in before_stop["events"]}
    assert seen <= {e["id"] for e in events}
    stopping = [e for e in events if e["topic"] == "device/stopping"]
    assert len(stopping) == 1
    assert stopping[0]["cause"] == {"kind": "shutdown"}
    assert stopping[0]["id"] > max(seen)
    started = [e["id"] for e in events if e["topic"] == "device/started"]
    assert len(started) == 2 and started[1] > stopping[0]["id"]
    assert await again.stop(signal.SIGTERM) == 0


async def test_export_without_any_configuration(tmp_path: Path) -> None:
    result = await camio("config", "export", data=tmp_path / "nothing")
    assert result.rc == 1
    assert "no configuration" in result.err
    assert "Traceback" not in result.err
