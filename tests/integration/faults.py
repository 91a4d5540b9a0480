"""Fault injection at the network: a TCP proxy in front of a dedicated broker.

The broker advertises the proxy's port, so every client connection after bootstrap goes
through the proxy, and `cut()` breaks all of them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sync_stream.embedded import EmbeddedBroker
from sync_stream.embedded.broker import LOOPBACK, free_port


class CuttableProxy:
    """Forward 127.0.0.1:listen_port to 127.0.0.1:target_port until cut."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cut = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self.listen_port)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Close every connection and refuse new ones until restore()."""
        self._cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self._cut = False

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if self._cut:
            client_writer.transport.abort()
            return
        try:
            broker_reader, broker_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._open.update((client_writer, broker_writer))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(
                self._pipe(client_reader, broker_writer), self._pipe(broker_reader, client_writer)
            )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._open.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


@contextlib.asynccontextmanager
async def broker_behind_proxy() -> AsyncIterator[tuple[EmbeddedBroker, CuttableProxy]]:
    """Start a dedicated broker that advertises a proxy's port, and the proxy."""
    proxy_port = free_port()
    broker = EmbeddedBroker(advertised_port=proxy_port)
    await asyncio.to_thread(broker.start)
    proxy = CuttableProxy(proxy_port, broker.port)
    await proxy.start()
    try:
        yield broker, proxy
    finally:
        await proxy.stop()
        await asyncio.to_thread(broker.stop)
