"""Keys from a JWKS URL (chosen by ``kid``), mutual TLS on the listener, and registration with the SMO."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.o2ims_api.app import _register
from shared.bus import Bus
from shared.httpapi.auth import (
    AuthConfig,
    TokenError,
    TokenVerifier,
    generate_signing_key,
    issue_token,
    server_ssl_context,
)
from shared.httpapi.subscriptions import host_allowed

from .conftest import MakeHarness
from .support import AUDIENCE, ISSUER, I


@pytest.fixture
async def jwks(tmp_path: Path) -> AsyncIterator[str]:
    generate_signing_key(tmp_path / "idp.pem", tmp_path / "idp.pub.pem")
    public = serialization.load_pem_public_key((tmp_path / "idp.pub.pem").read_bytes())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))  # type: ignore[arg-type]
    doc = {"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "ES256"}]}

    async def serve(_r: web.Request) -> web.Response:
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get("/jwks", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/jwks"
    finally:
        await runner.cleanup()


async def test_keys_from_a_jwks_url(jwks: str, tmp_path: Path) -> None:
    verifier = TokenVerifier(AuthConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks))
    key = (tmp_path / "idp.pem").read_bytes()
    who = await verifier.verify(issue_token(key, issuer=ISSUER, audience=AUDIENCE, roles=["reader"], kid="key-1"))
    assert who.roles == {"reader"}
    for bad in (
        issue_token(key, issuer=ISSUER, audience=AUDIENCE, kid="key-2"),
        issue_token(key, issuer=ISSUER, audience=AUDIENCE),
    ):
        with pytest.raises(TokenError):
            await verifier.verify(bad)


def _cert(path: Path, name: str, issuer: tuple[Any, x509.Name] | None, *, ca: bool = False) -> tuple[Any, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer, issuer_name = issuer if issuer else (key, subject)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key, subject


async def test_mutual_tls_refuses_clients_without_a_certificate(tmp_path: Path) -> None:
    ca = _cert(tmp_path / "ca", "test-ca", None, ca=True)
    _cert(tmp_path / "server", "127.0.0.1", ca)
    _cert(tmp_path / "client", "smo", ca)

    async def hello(_r: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = server_ssl_context(tmp_path / "server.crt", tmp_path / "server.key", tmp_path / "ca.crt")
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url, ssl=trusting) as resp:
                    await resp.read()
            trusting.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
            async with session.get(url, ssl=trusting) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def test_registration_with_the_smo(make_harness: MakeHarness, bus: Bus) -> None:
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tries = 0

    async def register(request: web.Request) -> web.Response:
        nonlocal tries
        tries += 1
        if tries == 1:
            return web.Response(status=503)  # the SMO is not ready yet: retried
        await got.put(await request.json())
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/register", register)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/register"
    harness = await make_harness(smo_registration_url=url, external_url="https://o2ims.example.com:8443")
    stop = asyncio.Event()
    task = asyncio.create_task(_register(harness.api, stop))
    try:
        body = await asyncio.wait_for(got.get(), 30)
        assert body["serviceUri"] == "https://o2ims.example.com:8443"
        assert body["globalCloudId"] == harness.api.state.global_cloud_id
        await asyncio.wait_for(task, 5)
        status, _, cloud = await harness.call("GET", I)
        assert status == 200 and cloud["serviceUri"] == "https://o2ims.example.com:8443"
    finally:
        stop.set()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("smo.example", True),
        ("SMO.example.", True),
        ("a.b.smo.net", True),
        ("smo.net", False),
        ("10.20.3.4", True),
        ("10.21.0.1", False),
        ("169.254.169.254", False),
        ("evil.example", False),
    ],
)
def test_callback_allow_list(host: str, allowed: bool) -> None:
    assert host_allowed(host, ("smo.example", "*.smo.net", "10.20.0.0/16")) is allowed


@pytest.mark.parametrize("host", ["fe80::1%eth0", "fe80::1%25eth0", "fe80::1%eth0\nx", "10.20.3.4%lo"])
def test_a_callback_host_with_a_zone_id_is_never_allowed(host: str) -> None:
    assert host_allowed(host, ("fe80::/10", "10.20.0.0/16", host)) is False


def test_an_ipv4_mapped_callback_host_is_the_ipv4_address() -> None:
    assert host_allowed("::ffff:10.20.3.4", ("10.20.0.0/16",)) is True
