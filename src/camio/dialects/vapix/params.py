"""param.cgi: the device's parameters as ``root.<Group>.<Name>=<value>`` lines.

The tree is built from the configuration and the ports at each request, so it always agrees
with getPorts and the events. ``action=list`` takes groups, comma lists or single parameters
(``root.`` optional in the request, always in the reply); an unknown group is answered, as
Axis devices do, with HTTP 200 and ``# Error: Error -1 getting param in group 'root.X'``.

``action=update`` changes I/O parameters only, mapped onto the port configuration:

* ``IOPort.I<n>.Input.Name`` / ``Output.Name`` -> the port's name;
* ``IOPort.I<n>.Input.Trig`` ``closed``/``open`` (active when the circuit is so) -> the
  input's ``normal_state`` (the other one);
* ``IOPort.I<n>.Output.Active`` ``closed``/``open`` -> the output's valid signal
  (``active_state``).

Every parameter of a request is checked before anything changes, and all changes are saved as
one configuration edit: a bad request changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from camio.dialects.vapix.identity import AxisIdentity, axis_identity
from camio.dialects.vapix.numbering import AxisNumbering
from camio.engine.device import Device
from camio.engine.errors import NotFound

_UPDATE_RE = re.compile(r"^(?:root\.)?IOPort\.I(\d{1,4})\.(Input|Output)\.(Name|Trig|Active)$")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def param_tree(device: Device) -> dict[str, str]:
    """Every parameter, ``root.``-prefixed, in a stable order."""
    ident: AxisIdentity = axis_identity(device.config.device)
    tree: dict[str, str] = {}
    brand = {
        "Brand": ident.brand,
        "ProdFullName": ident.prod_full_name,
        "ProdNbr": ident.prod_nbr,
        "ProdShortName": ident.prod_short_name,
        "ProdType": ident.prod_type,
        "ProdVariant": ident.prod_variant,
        "WebURL": ident.web_url,
    }
    tree.update({f"root.Brand.{k}": v for k, v in brand.items()})
    ports = AxisNumbering(device).ports()
    n_in = sum(1 for p in ports if p.direction == "input")
    n_out = len(ports) - n_in
    tree["root.Input.NbrOfInputs"] = str(n_in)
    for port in ports:
        prefix = f"root.IOPort.I{port.axis_id}"
        tree[f"{prefix}.Configurable"] = "no"
        tree[f"{prefix}.Direction"] = port.direction
        tree[f"{prefix}.Usage"] = ""
        if port.direction == "input":
            cfg_in = device.input(port.port_id).config
            tree[f"{prefix}.Input.Name"] = cfg_in.name
            # Trig = the circuit that makes the input active: the other one than normal.
            tree[f"{prefix}.Input.Trig"] = "closed" if cfg_in.normal_state == "open" else "open"
        else:
            cfg_out = device.output(port.port_id).config
            tree[f"{prefix}.Output.Active"] = cfg_out.active_state
            tree[f"{prefix}.Output.Button"] = "none"
            tree[f"{prefix}.Output.DelayTime"] = "0"
            tree[f"{prefix}.Output.Mode"] = "bistable"
            tree[f"{prefix}.Output.Name"] = cfg_out.name
            tree[f"{prefix}.Output.PulseTime"] = "0"
    tree["root.Network.HostName"] = device.config.device.name
    tree["root.Network.UPnP.FriendlyName"] = device.config.device.name
    tree["root.Output.NbrOfOutputs"] = str(n_out)
    properties = {
        "API.HTTP.Version": "3",
        "API.Metadata.Metadata": "yes",
        "API.Metadata.Version": "1.0",
        "Firmware.BuildDate": ident.build_date,
        "Firmware.BuildNumber": ident.build_number,
        "Firmware.Version": ident.firmware,
        "IO.ManualTriggerNbr": "6",
        "System.Architecture": ident.architecture,
        "System.HardwareID": ident.hardware_id,
        "System.SerialNumber": ident.serial,
        "System.Soc": ident.soc,
        "VirtualInput.VirtualInput": _yes(True),
    }
    tree.update({f"root.Properties.{k}": v for k, v in properties.items()})
    tree["root.System.HostName"] = device.config.device.name
    return tree


def _rooted(name: str) -> str:
    name = name.strip()
    return name if name == "root" or name.startswith("root.") else f"root.{name}"


def list_params(device: Device, groups: str | None) -> str:
    """The reply of ``action=list``: matching lines, and an error line per unknown group."""
    tree = param_tree(device)
    if not groups:
        return "".join(f"{k}={v}\n" for k, v in tree.items())
    lines: list[str] = []
    for raw in groups.split(","):
        if not raw.strip():
            continue
        name = _rooted(raw)
        found = [
            f"{k}={v}"
            for k, v in tree.items()
            if name == "root" or k == name or k.startswith(name + ".")
        ]
        if found:
            lines += found
        else:
            lines.append(f"# Error: Error -1 getting param in group '{name}'")
    return "".join(f"{line}\n" for line in lines)


@dataclass(frozen=True, slots=True)
class ParamError(Exception):
    message: str


def plan_update(device: Device, assignments: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Check every ``name=value`` of an update; the per-port configuration patches, or
    :class:`ParamError` naming the first bad one (then nothing may change)."""
    if not assignments:
        raise ParamError("no parameter to update")
    ports = AxisNumbering(device)
    patches: dict[str, dict[str, Any]] = {}
    for name, value in assignments:
        match = _UPDATE_RE.match(name)
        if match is None:
            raise ParamError(f"Error setting '{_rooted(name)}': no such writable parameter")
        axis_id, direction, field = match.groups()
        try:
            port = ports.by_axis_id(axis_id)
        except NotFound:
            raise ParamError(f"Error setting '{_rooted(name)}': no such port") from None
        if port.direction != direction.lower():
            raise ParamError(
                f"Error setting '{_rooted(name)}': port {axis_id} is an {port.direction}"
            )
        patch = patches.setdefault(port.port_id, {})
        if field == "Name":
            if not 1 <= len(value) <= 64 or not value.isprintable():
                raise ParamError(f"Error setting '{_rooted(name)}' to '{value}'")
            patch["name"] = value
        elif field == "Trig" and direction == "Input":
            if value not in ("open", "closed"):
                raise ParamError(f"Error setting '{_rooted(name)}' to '{value}'")
            patch["normal_state"] = "open" if value == "closed" else "closed"
        elif field == "Active" and direction == "Output":
            if value not in ("open", "closed"):
                raise ParamError(f"Error setting '{_rooted(name)}' to '{value}'")
            patch["active_state"] = value
        else:
            raise ParamError(f"Error setting '{_rooted(name)}': no such writable parameter")
    return patches


def apply_update(device: Device, patches: dict[str, dict[str, Any]]) -> None:
    """Save all patches as one configuration change (validated whole, or not at all)."""

    def edit(data: dict[str, Any]) -> None:
        for section in ("inputs", "outputs"):
            for port in data[section]:
                if port["id"] in patches:
                    port.update(patches[port["id"]])

    device.edit_config(edit)
