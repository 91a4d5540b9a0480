"""Throwaway certificates and a TLS-terminating proxy for testing the clients' TLS settings.

The embedded broker accepts `--cert`/`--key` but never serves TLS, so the tests run a
plaintext broker that advertises the proxy's address. Every connection the clients open,
the bootstrap one and those to the advertised broker, then goes through the proxy: TLS
between the client and the proxy, plaintext between the proxy and the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import trustme

LOOPBACK = "127.0.0.1"
COPY_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """PEM files a client needs: the CA that signed the server, its own certificate and key."""

    cafile: Path
    certfile: Path
    keyfile: Path


class TestPki:
    """A CA with one server certificate (by default for 127.0.0.1 and localhost) and one
    client certificate."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, server_names: tuple[str, ...] = (LOOPBACK, "localhost")) -> None:
        self.ca = trustme.CA(organization_name="sync-stream tests")
        self.server = self.ca.issue_cert(*server_names)
        self.client = self.ca.issue_cert(
            "client.sync-stream.test", common_name="sync-stream test client"
        )

    def server_context(self, *, require_client_cert: bool) -> ssl.SSLContext:
        """Create the proxy's context; with require_client_cert it rejects clients without one."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        if require_client_cert:
            self.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def write_client_files(self, folder: Path) -> ClientFiles:
        """Write the CA certificate and the client's certificate and key as PEM files."""
        folder.mkdir(parents=True, exist_ok=True)
        files = ClientFiles(
            cafile=folder / "ca.pem",
            certfile=folder / "client-cert.pem",
            keyfile=folder / "client-key.pem",
        )
        self.ca.cert_pem.write_to_path(str(files.cafile))
        for blob in self.client.cert_chain_pems:
            blob.write_to_path(str(files.certfile), append=True)
        self.client.private_key_pem.write_to_path(str(files.keyfile))
        return files


@dataclass(eq=False)
class TlsProxy:
    """Terminate TLS on a free loopback port and forward the plaintext to `upstream_port`.

    The TLS side runs on an ssl.SSLObject over memory buffers rather than asyncio's own TLS
    transport, because asyncio (CPython 3.11) closes a connection whose server-side
    handshake failed without sending the TLS alert that informs the client why.
    `send_alerts=False` keeps that silent close, to test how a client reports it.

    `handshakes` counts connections whose handshake succeeded, `client_subjects` records
    the subject of each client certificate the proxy verified, and `handshake_errors` the
    OpenSSL reason of each failed handshake.
    """

    upstream_port: int
    context: ssl.SSLContext
    send_alerts: bool = True
    port: int = 0
    handshakes: int = 0
    client_subjects: list[str] = field(default_factory=list)
    handshake_errors: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> TlsProxy:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> TlsProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            tls = _TlsConnection(self.context, client_reader, client_writer)
            try:
                await tls.handshake(send_alert=self.send_alerts)
            except (ssl.SSLError, ConnectionError) as exc:
                self.handshake_errors.append(getattr(exc, "reason", None) or type(exc).__name__)
                return
            self.handshakes += 1
            peer = tls.peer_certificate()
            if peer:
                self.client_subjects.append(_subject_text(peer))
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    LOOPBACK, self.upstream_port
                )
            except OSError:
                return  # the broker is down: the client sees the connection close
            pipes = [
                asyncio.create_task(tls.copy_to(upstream_writer)),
                asyncio.create_task(tls.copy_from(upstream_reader)),
            ]
            try:
                # When either side closes, close both: the proxy keeps no half-closed
                # connections.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            self._connections.discard(task)


class _TlsConnection:
    """The server side of one TLS connection, driven by hand over a TCP stream."""

    def __init__(
        self, context: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._reader = reader
        self._writer = writer

    async def handshake(self, *, send_alert: bool) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._receive()
                continue
            except ssl.SSLError:
                if send_alert:
                    await self._flush()
                raise
            await self._flush()
            return

    def peer_certificate(self) -> dict[str, object] | None:
        return self._tls.getpeercert() or None

    async def copy_to(self, upstream: asyncio.StreamWriter) -> None:
        """Decrypt what the client sends and write it upstream until the client closes."""
        with contextlib.suppress(ConnectionError, ssl.SSLZeroReturnError):
            while True:
                try:
                    data = self._tls.read(COPY_CHUNK_BYTES)
                except ssl.SSLWantReadError:
                    # Reading may have queued a record to send back, such as a key update.
                    await self._flush()
                    await self._receive()
                    continue
                if not data:
                    return  # the client sent close_notify
                upstream.write(data)
                await upstream.drain()

    async def copy_from(self, upstream: asyncio.StreamReader) -> None:
        """Encrypt what upstream sends and write it to the client until upstream closes."""
        with contextlib.suppress(ConnectionError):
            while data := await upstream.read(COPY_CHUNK_BYTES):
                self._tls.write(data)
                await self._flush()

    async def _receive(self) -> None:
        data = await self._reader.read(COPY_CHUNK_BYTES)
        if not data:
            raise ConnectionResetError("client closed the connection")
        self._incoming.write(data)

    async def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._writer.write(pending)
            await self._writer.drain()


def _subject_text(peer_certificate: dict[str, object]) -> str:
    """Format the subject of a certificate returned by SSLObject.getpeercert() as k=v pairs."""
    subject = peer_certificate.get("subject", ())
    assert isinstance(subject, tuple)
    return ",".join(f"{key}={value}" for rdn in subject for key, value in rdn)
