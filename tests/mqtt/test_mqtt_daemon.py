"""The daemon with MQTT on: the composition root starts and stops the client, the status API
shows it, a configuration change through the API reconnects it."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import pytest
import yaml
from mqtt_helpers import BASE, SERIAL, Broker, Subscriber, wait_for

from camio.app import TOKEN_FILE, CamioApp, Settings
from camio.mqtt import MQTT

pytestmark = pytest.mark.asyncio


async def test_daemon_with_mqtt(tmp_path: Path, broker: Broker, cleanup: list[object]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "device": {"serial": SERIAL},
                "mqtt": {
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": broker.port,
                    "username": "someone",
                    "password": "not-shown",
                },
            }
        )
    )
    sub = await Subscriber(broker.port, [f"{BASE}/availability"]).start()
    cleanup.append(sub)
    app = CamioApp(Settings(data_dir=data, port=0, https_off=True), out=io.StringIO())
    await app.start()
    try:
        assert app.device is not None
        service = app.device.services.get(MQTT)
        assert service is not None
        await wait_for(lambda: service.state == "connected", what="the daemon's client")
        await wait_for(lambda: sub.last(f"{BASE}/availability") == b"online")
        token = (data / TOKEN_FILE).read_text()
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{app.url}/api/v1/mqtt") as reply:
                assert reply.status == 200
                body = await reply.json()
            assert body["state"] == "connected"
            assert body["broker"] == f"127.0.0.1:{broker.port}"
            assert body["password"] == "********" and "not-shown" not in str(body)
            assert body["node_id"] == SERIAL.lower()

            # Turning MQTT off through the configuration API disconnects cleanly (offline).
            async with http.get(f"{app.url}/api/v1/config") as reply:
                doc = await reply.json()
            config = doc["config"]
            config["mqtt"]["enabled"] = False
            async with http.put(f"{app.url}/api/v1/config", json=doc) as reply:
                assert reply.status in (200, 204), await reply.text()
        await wait_for(lambda: service.state == "disabled", what="disabled")
        await wait_for(lambda: sub.last(f"{BASE}/availability") == b"offline")
    finally:
        await app.stop()
