"""The ``camio`` command: run the daemon, manage users and configuration, drive a running device.

Commands that change a running device (``sim``, ``io``, ``events``) talk to its API; ``user``
works on the data directory directly (the daemon reads accounts from the same database, so a
change applies at once); ``config`` goes through the API when the daemon runs and to the file
when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from camio import __version__
from camio.app import DEFAULT_DATA, Settings, open_users, parse_listen, serve
from camio.client import ClientError, DaemonClient
from camio.core.config import DeviceConfig
from camio.core.events import iso_utc
from camio.hardware.gpio_cli import add_gpio_commands
from camio.store.config_store import (
    ConfigFileError,
    ConfigStore,
    dump_yaml,
    load_yaml_text,
)
from camio.store.users import Role, UserError

Handler = Callable[[argparse.Namespace], int]


def _ensure_actions() -> None:
    import camio.actions  # (rule validation needs the action kinds)
    import camio.recipients  # noqa: F401  (and the recipient kinds)


def _client(args: argparse.Namespace) -> DaemonClient:
    return DaemonClient.from_data_dir(args.data, args.url)


def _run_async(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coro)
    except ClientError as exc:
        print(f"camio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# -- run -------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen or "127.0.0.1:8080")
        https_host, https_port = None, None
        if args.https_listen not in (None, "off"):
            https_host, https_port = parse_listen(args.https_listen)
        if args.audio.partition(":")[0] not in ("sim", "alsa"):
            raise ValueError(f"--audio {args.audio}: use 'sim', 'alsa' or 'alsa:DEVICE'")
    except ValueError as exc:
        print(f"camio: {exc}", file=sys.stderr)
        return 2
    _ensure_actions()
    settings = Settings(
        data_dir=args.data,
        config_path=args.config,
        host=host,
        port=port,
        https_host=https_host,
        https_port=https_port,
        https_off=args.https_listen == "off",
        explicit_listen=args.listen is not None,
        audio_output=args.audio,
        video=not args.no_video,
    )
    try:
        return asyncio.run(serve(settings))
    except ConfigFileError as exc:
        print(f"camio: invalid configuration {settings.config_file}:", file=sys.stderr)
        for message in exc.messages:
            print(f"  {message}", file=sys.stderr)
        return 2


# -- users -----------------------------------------------------------------------------------


def _read_password(prompt: str = "Password: ") -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Repeat: ") != first:
            raise UserError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user(args: argparse.Namespace) -> int:
    conn, users = open_users(args.data)
    try:
        if args.user_cmd == "add":
            users.add(args.name, _read_password(), Role(args.role))
            print(f"user {args.name!r} created ({args.role})")
        elif args.user_cmd == "passwd":
            users.set_password(args.name, _read_password("New password: "))
            print(f"password of {args.name!r} changed")
        elif args.user_cmd == "role":
            users.set_role(args.name, Role(args.role))
            print(f"{args.name!r} is now {args.role}")
        elif args.user_cmd == "delete":
            users.delete(args.name)
            print(f"user {args.name!r} deleted")
        else:
            for user in users.list():
                print(f"{user.name}\t{user.role.value}\t{iso_utc(user.created_wall_ns)}")
        return 0
    except UserError as exc:
        print(f"camio: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()


# -- config ----------------------------------------------------------------------------------


def _read_config_file(path: Path) -> DeviceConfig:
    _ensure_actions()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError([f"cannot read {path}: {exc.strerror}"]) from None
    return load_yaml_text(text, DeviceConfig)


def cmd_config(args: argparse.Namespace) -> int:
    try:
        if args.config_cmd == "validate":
            config = _read_config_file(args.file)
            print(
                f"{args.file}: valid ({len(config.inputs)} inputs, {len(config.outputs)} "
                f"outputs, {len(config.rules)} rules, {len(config.schedules)} schedules)"
            )
            return 0
        if args.config_cmd == "export":
            return _config_export(args)
        return _run_async(_config_import(args))
    except ConfigFileError as exc:
        print("camio: invalid configuration:", file=sys.stderr)
        for message in exc.messages:
            print(f"  {message}", file=sys.stderr)
        return 2


def _offline_store(args: argparse.Namespace) -> ConfigStore[DeviceConfig]:
    _ensure_actions()
    return ConfigStore(args.config or args.data / "config.yaml", DeviceConfig)


async def _fetch_config(args: argparse.Namespace) -> tuple[DeviceConfig, int]:
    try:
        body = await _client(args).request("GET", "/api/v1/config")
        return DeviceConfig.model_validate(body["config"]), int(body["revision"])
    except ClientError as exc:
        if "cannot reach" not in str(exc):
            raise
        return _offline_store(args).load()


def _config_export(args: argparse.Namespace) -> int:
    try:
        config, revision = asyncio.run(_fetch_config(args))
    except ClientError as exc:
        print(f"camio: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(
            f"camio: no configuration at {exc.filename} (the daemon is not running, and "
            "'camio run' writes the defaults there at its first start)",
            file=sys.stderr,
        )
        return 1
    text = dump_yaml(config, revision)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def _config_import(args: argparse.Namespace) -> int:
    config = _read_config_file(args.file)
    try:
        body = await _client(args).request(
            "PUT", "/api/v1/config", {"config": config.model_dump(mode="json")}
        )
        print(f"configuration applied, revision {body['revision']}")
    except ClientError as exc:
        if "cannot reach" not in str(exc):
            raise
        if args.config is None:
            # As 'camio run' would create it: owner-only, it holds accounts and keys.
            args.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        revision = _offline_store(args).save(config)
        print(f"daemon not running: configuration saved, revision {revision}")
    return 0


# -- sim / io / events -----------------------------------------------------------------------


def _print_ports(ports: list[dict[str, Any]]) -> None:
    for port in ports:
        state = "ACTIVE" if port["active"] else "idle"
        cause = port.get("cause") or {}
        why = cause.get("kind", "")
        for key in ("rule", "user", "detail"):
            if cause.get(key):
                why += f" {key}={cause[key]}"
        wire = (port.get("sim") or {}).get("raw")
        if port.get("debouncing") and wire:
            why += f" (debouncing: wire {wire})"
        print(
            f"{port['id']:<10} {port['direction']:<7} {state:<7} {port['circuit']:<7} "
            f"{port['name']:<20} {why}"
        )


async def _sim(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.sim_cmd == "input":
        circuit = {"close": "closed", "open": "open"}[args.state]
        port = await client.request(
            "POST", f"/api/v1/sim/ports/{args.port}/circuit", {"circuit": circuit}
        )
    else:
        body: dict[str, Any] = {"fault": args.fault}
        if args.edges is not None:
            body["edges"] = args.edges
        if args.interval_ms is not None:
            body["interval_ms"] = args.interval_ms
        port = await client.request("POST", f"/api/v1/sim/ports/{args.port}/fault", body)
    _print_ports([port])
    return 0


async def _io(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.io_cmd == "status":
        body = await client.request("GET", "/api/v1/ports")
        if args.json:
            print(json.dumps(body, indent=2))
        else:
            _print_ports(body["ports"])
        return 0
    request: dict[str, Any] = {"active": args.state == "on"}
    if args.for_ms is not None:
        request["duration_ms"] = args.for_ms
    port = await client.request("PUT", f"/api/v1/ports/{args.port}/state", request)
    _print_ports([port])
    return 0


def _format_event(event: dict[str, Any]) -> str:
    cause = event.get("cause") or {}
    why = (
        f" ({cause.get('kind')}{' ' + cause['rule'] if cause.get('rule') else ''})" if cause else ""
    )
    data = json.dumps(event.get("data", {}), separators=(",", ":"))
    return (
        f"{event['time']} #{event['id']} {event['topic']} {event['source']} "
        f"{event.get('kind', '')} {data}{why}"
    )


async def _events_tail(args: argparse.Namespace) -> int:
    client = _client(args)
    params = []
    if args.topic:
        params.append(f"topic={args.topic}")
    if args.source:
        params.append(f"source={args.source}")
    if args.history:
        query = "&".join([*params, f"limit={args.history}", "order=desc"])
        body = await client.request("GET", f"/api/v1/events?{query}")
        for event in reversed(body["events"]):
            print(_format_event(event), flush=True)
    if args.no_follow:
        return 0
    query = "&".join([*params, "initial=0" if args.history else "initial=1"])
    async for event in client.stream(f"/api/v1/events/stream?{query}"):
        print(_format_event(event), flush=True)
    return 0


# -- parser ----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, url: bool = True) -> None:
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="data directory (default: ./camio-data)"
    )
    if url:
        parser.add_argument(
            "--url", default=None, help="daemon URL (default: from the data directory)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camio", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"camio {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the device (simulated by default)")
    _common(run, url=False)
    run.add_argument(
        "--config", type=Path, default=None, help="configuration file (default: DATA/config.yaml)"
    )
    run.add_argument(
        "--listen",
        default=None,
        help="HOST:PORT for plain HTTP (default 127.0.0.1:8080); given explicitly, it serves "
        "plain HTTP whatever the configured HTTP mode",
    )
    run.add_argument(
        "--https-listen",
        default=None,
        help="HOST:PORT for HTTPS (default: the HTTP host, port 8443), or 'off'",
    )
    run.add_argument(
        "--audio",
        default="sim",
        help="audio output: 'sim' (record what would play; default), 'alsa' or 'alsa:DEVICE' "
        "(plays with aplay when alsa-utils is installed)",
    )
    run.add_argument(
        "--no-video",
        action="store_true",
        help="do not start the video worker (no recordings or snapshots; storage still works)",
    )
    run.set_defaults(func=cmd_run)

    user = sub.add_parser("user", help="manage accounts (no default account exists)")
    user_sub = user.add_subparsers(dest="user_cmd", required=True)
    add = user_sub.add_parser("add", help="create a user; password from stdin")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default="viewer")
    passwd = user_sub.add_parser("passwd", help="change a password (from stdin)")
    passwd.add_argument("name")
    role = user_sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=[r.value for r in Role])
    delete = user_sub.add_parser("delete", help="delete a user")
    delete.add_argument("name")
    listing = user_sub.add_parser("list", help="list users")
    # --data on each subcommand only: on ``user`` too, the subcommand's default would
    # silently replace ``camio user --data X add``'s X.
    for p in (add, passwd, role, delete, listing):
        _common(p, url=False)
    user.set_defaults(func=cmd_user)

    config = sub.add_parser("config", help="export, import or validate the configuration")
    config_sub = config.add_subparsers(dest="config_cmd", required=True)
    export = config_sub.add_parser("export", help="print the configuration as YAML")
    export.add_argument("-o", "--output", default=None, help="write to a file")
    imp = config_sub.add_parser("import", help="replace the configuration from a YAML file")
    imp.add_argument("file", type=Path)
    val = config_sub.add_parser("validate", help="check a YAML file without applying it")
    val.add_argument("file", type=Path)
    for p in (export, imp, val):
        _common(p)
        p.add_argument("--config", type=Path, default=None, help=argparse.SUPPRESS)
    config.set_defaults(func=cmd_config)

    sim = sub.add_parser("sim", help="simulator: close/open inputs, inject faults")
    sim_sub = sim.add_subparsers(dest="sim_cmd", required=True)
    sim_in = sim_sub.add_parser("input", help="close or open an input circuit")
    sim_in.add_argument("port")
    sim_in.add_argument("state", choices=["close", "open"])
    fault = sim_sub.add_parser("fault", help="inject a fault on an input")
    fault.add_argument("port")
    fault.add_argument("fault", choices=["bounce", "stuck", "cut", "short", "clear"])
    fault.add_argument("--edges", type=int, default=None, help="bounce: number of edges")
    fault.add_argument("--interval-ms", type=float, default=None, help="bounce: ms between edges")
    for p in (sim_in, fault):
        _common(p)
    sim.set_defaults(func=lambda a: _run_async(_sim(a)))

    io = sub.add_parser("io", help="drive outputs and show port status")
    io_sub = io.add_subparsers(dest="io_cmd", required=True)
    io_set = io_sub.add_parser("set", help="start or stop an output")
    io_set.add_argument("port")
    io_set.add_argument("state", choices=["on", "off"])
    io_set.add_argument(
        "--for", dest="for_ms", type=int, default=None, help="milliseconds, then back to idle"
    )
    status = io_sub.add_parser("status", help="every port's state and the cause of its change")
    status.add_argument("--json", action="store_true")
    for p in (io_set, status):
        _common(p)
    io.set_defaults(func=lambda a: _run_async(_io(a)))

    events = sub.add_parser("events", help="the event log")
    events_sub = events.add_subparsers(dest="events_cmd", required=True)
    tail = events_sub.add_parser("tail", help="follow events live (Ctrl-C to stop)")
    tail.add_argument("--topic", default=None, help="exact topic, or a prefix ending in *")
    tail.add_argument("--source", default=None)
    tail.add_argument("-n", "--history", type=int, default=0, help="print N past events first")
    tail.add_argument("--no-follow", action="store_true", help="print the history and stop")
    _common(tail)
    events.set_defaults(func=lambda a: _run_async(_events_tail(a)))
    add_gpio_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
