"""Username/password (a mosquitto password file) and TLS with a self-signed CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mqtt_helpers import BASE, Broker, Subscriber, free_port, make_device, mqtt_config, wait_for

from camio.mqtt import MqttService

pytestmark = pytest.mark.asyncio


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    folder = tmp_path / "auth"
    folder.mkdir()
    passwords = folder / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "camio", "right-password"], check=True
    )
    passwords.chmod(0o600)
    server = Broker(folder, free_port(), extra=[f"password_file {passwords}"], anonymous=False)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camio mqtt test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_password_accepted_and_refused(auth_broker: Broker, cleanup: list[object]) -> None:
    good = make_device(mqtt_config(auth_broker.port, username="camio", password="right-password"))
    cleanup.append(good)
    service = MqttService(good, rng=lambda: 0.0)
    service.start()
    cleanup.append(service)
    await wait_for(lambda: service.state == "connected", what="login")

    bad_config = mqtt_config(auth_broker.port, username="camio", password="wrong-password")
    bad_config = bad_config.model_copy(
        update={"device": bad_config.device.model_copy(update={"serial": "OTHER1"})}
    )
    bad = make_device(bad_config)
    cleanup.append(bad)
    refused = MqttService(bad, rng=lambda: 0.0)
    refused.start()
    cleanup.append(refused)
    await wait_for(lambda: refused.last_error is not None, what="the refusal")
    assert refused.state in ("disconnected", "connecting")
    assert "wrong-password" not in (refused.last_error or "")
    assert refused.status()["password"] == "********"
    assert refused.status()["next_retry_s"] is not None  # it keeps trying (backoff)


async def test_tls_with_a_private_ca(
    tmp_path: Path, tls_files: tuple[Path, Path], cleanup: list[object]
) -> None:
    cert, key = tls_files
    folder = tmp_path / "tls"
    folder.mkdir()
    broker = Broker(
        folder, free_port(), extra=[f"certfile {cert}", f"keyfile {key}", f"cafile {cert}"]
    )
    broker.start()
    cleanup.append(type("Stop", (), {"stop": staticmethod(broker.kill)})())
    device = make_device(
        mqtt_config(broker.port, tls={"enabled": True, "ca_file": str(cert)}, protocol="3.1.1")
    )
    cleanup.append(device)
    service = MqttService(device, rng=lambda: 0.0)
    service.start()
    cleanup.append(service)
    await wait_for(lambda: service.state == "connected", what="TLS connection")
    assert service.status()["tls"] is True

    # Verification is on by default: the system CAs do not know this broker.
    other = mqtt_config(broker.port, tls={"enabled": True}, node_id="untrusted")
    untrusted = make_device(other)
    cleanup.append(untrusted)
    refused = MqttService(untrusted, rng=lambda: 0.0)
    refused.start()
    cleanup.append(refused)
    await wait_for(lambda: refused.last_error is not None, what="the certificate refusal")
    assert "certificate" in (refused.last_error or "").lower()

    # The state is on the broker, over TLS.
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    sub = await Subscriber(broker.port, [f"{BASE}/input/+"], tls_context=context).start()
    cleanup.append(sub)
    await wait_for(lambda: sub.last(f"{BASE}/input/in1") == b"OFF")
