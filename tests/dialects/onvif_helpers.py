"""Helpers for the ONVIF tests: the real onvif-zeep-async client, raw SOAP requests with
hand-made UsernameTokens, and an XSD validator built from the schemas the client package ships.

(A module of its own, named so no other test folder collides with it.)
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import onvif
from lxml import etree

ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
TDS = "http://www.onvif.org/ver10/device/wsdl"
TMD = "http://www.onvif.org/ver10/deviceIO/wsdl"
WSDL_DIR = Path(onvif.__file__).parent / "wsdl"
_SERVICE_WSDLS = ("devicemgmt.wsdl", "deviceio.wsdl", "media.wsdl", "events.wsdl")


def build_schema(work: Path) -> etree.XMLSchema:
    """An XMLSchema of the ONVIF services, from the WSDL-embedded schemas (reference §6.2)."""
    target = work / "wsdl"
    shutil.copytree(WSDL_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    imports = []
    for name in _SERVICE_WSDLS:
        doc = etree.parse(str(target / name))
        root = doc.getroot()
        for i, schema in enumerate(root.iter("{http://www.w3.org/2001/XMLSchema}schema")):
            nsmap = {**root.nsmap, **schema.nsmap}
            nsmap.pop(None, None)
            fresh = etree.Element(schema.tag, nsmap=nsmap)
            for key, value in schema.attrib.items():
                fresh.set(key, value)
            for child in schema:
                fresh.append(copy.deepcopy(child))
            for imp in fresh.findall("{http://www.w3.org/2001/XMLSchema}import"):
                if str(imp.get("schemaLocation", "")).endswith(".wsdl"):
                    del imp.attrib["schemaLocation"]
            out = target / f"{name}.{i}.xsd"
            etree.ElementTree(fresh).write(str(out))
            imports.append((fresh.get("targetNamespace"), out.name))
    wrapper = ['<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">']
    wrapper += [f'<xs:import namespace="{ns}" schemaLocation="{loc}"/>' for ns, loc in imports]
    wrapper.append("</xs:schema>")
    (target / "all.xsd").write_text("\n".join(wrapper))
    return etree.XMLSchema(etree.parse(str(target / "all.xsd")))


def body_child(xml: bytes) -> etree._Element:
    root = etree.fromstring(xml)
    body = root.find(f"{{{ENV}}}Body")
    assert body is not None, xml[:300]
    return body[0]


def fault_subcodes(xml: bytes) -> list[str]:
    child = body_child(xml)
    assert child.tag == f"{{{ENV}}}Fault", xml[:300]
    return [v.text or "" for v in child.iter(f"{{{ENV}}}Value")]


def username_token(
    user: str,
    password: str,
    *,
    nonce: bytes | None = None,
    created: datetime | None = None,
) -> str:
    nonce = nonce if nonce is not None else os.urandom(16)
    stamp = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(
        hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()
    ).decode()
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{DIGEST}">{digest}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def envelope(body: str, header: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{ENV}" '
        f'xmlns:tds="{TDS}" xmlns:tmd="{TMD}" xmlns:tt="http://www.onvif.org/ver10/schema">'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


@dataclass
class RawSoap:
    """Raw POSTs to the device's SOAP endpoints."""

    url: str

    async def post(self, path: str, data: bytes) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(
                self.url + path,
                content=data,
                headers={"Content-Type": "application/soap+xml; charset=utf-8"},
            )


def stale(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
