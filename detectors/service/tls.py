"""TLS settings of every listener of the detector: a certificate, its key, and optionally a client CA (mTLS).

Usage::

    from servewatch.detectors.service.tls import TlsSettings

    tls = TlsSettings(cert="server.pem", key="server.key", client_ca="clients-ca.pem")   # client_ca: optional
    context = tls.server_context()      # an ssl.SSLContext for a server socket; ValueError names a bad file
    tls.files()                         # (certificate chain, key, client CA or None) as bytes (e.g. for gRPC)

``servewatch detect --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]`` builds one and hands it to
``DetectorService(tls=...)``, which applies it to every listener (OTLP/HTTP and ``/metrics``). With
``client_ca`` every client must present a certificate signed by that CA, or the handshake fails. TLS 1.2 is
the oldest version accepted.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsSettings"]


@dataclass(frozen=True)
class TlsSettings:
    """Certificate (PEM, the chain may follow it), its private key, optional client CA; see the module docstring."""

    cert: str
    key: str
    client_ca: str | None = None

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot load the TLS certificate {self.cert} with key {self.key}: "
                             f"{_reason(error)}") from None
        if self.client_ca is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca)
            except (OSError, ssl.SSLError) as error:
                raise ValueError(f"cannot load the TLS client CA {self.client_ca}: {_reason(error)}") from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def files(self) -> tuple[bytes, bytes, bytes | None]:
        """The three files' contents (for servers that take PEM bytes rather than an ``SSLContext``)."""
        return (Path(self.cert).read_bytes(), Path(self.key).read_bytes(),
                None if self.client_ca is None else Path(self.client_ca).read_bytes())


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(getattr(error, "reason", None) or error).lower()
