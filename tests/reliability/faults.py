"""Faulty network peers on 127.0.0.1: an HTTP proxy in front of moto's S3 server that injects faults (500
answers, dropped connections), and TCP servers that never answer, answer garbage, or answer slowly."""

from __future__ import annotations

import http.client
import re
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit


class FaultProxy:
    """``mode``: ``pass`` (forward), ``500`` (answer 500 to every DeleteObjects), ``403`` (refuse every request:
    a revoked key), ``drop`` (close the connection of every DeleteObjects without answering), ``html`` (answer
    every request 200 with an HTML page: a captive portal or a misrouted load balancer), ``freeze`` (forward the
    first ``freeze_after`` requests, then never answer: S3 freezing mid-run). ``seen`` counts the requests per
    mode."""

    def __init__(self, upstream: str, freeze_after: int = 0) -> None:
        self.upstream = urlsplit(upstream)
        self.mode = "pass"
        self.freeze_after = freeze_after
        self.seen: dict[str, int] = {}
        self.released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                deleting = self.command == "POST" and "delete" in (urlsplit(self.path).query or "")
                mode = proxy.mode if deleting or proxy.mode in ("403", "html") else "pass"
                if proxy.mode == "freeze":
                    mode = "freeze" if sum(proxy.seen.values()) >= proxy.freeze_after else "pass"
                proxy.seen[mode] = proxy.seen.get(mode, 0) + 1
                if mode == "freeze":
                    proxy.released.wait(300)  # never answers (until the proxy closes)
                    self.close_connection = True
                    return
                if mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if mode == "keyerror":  # S3 answering, every key of a DeleteObjects failing (transient)
                    keys = re.findall(rb"<Key>(.*?)</Key>", body or b"")
                    errors = b"".join(b"<Error><Key>" + k + b"</Key><Code>InternalError</Code><Message>injected"
                                      b"</Message></Error>" for k in keys)  # fmt: skip
                    payload = b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>' + errors + b"</DeleteResult>"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if mode == "html":
                    payload = b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                if mode in ("500", "403"):
                    code = {"500": b"InternalError", "403": b"InvalidAccessKeyId"}[mode]
                    payload = b"<Error><Code>" + code + b"</Code><Message>injected</Message></Error>"
                    self.send_response(int(mode))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class TcpServer:
    """A server on 127.0.0.1 for the failure modes of a network peer. ``mode``:

    - ``silent``: accepts connections and never answers (a frozen server, a half-dead load balancer);
    - ``garbage``: answers any connection with an HTTP error page (something that is not PostgreSQL);
    - ``slow``: forwards to ``upstream`` (host, port), delaying every chunk by ``delay_s`` (a slow network).
    """

    def __init__(self, mode: str, upstream: tuple[str, int] | None = None, delay_s: float = 0.0) -> None:
        import socket

        self.mode, self.upstream, self.delay_s = mode, upstream, delay_s
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(client)
            if self.mode == "garbage":
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                client.close()
            elif self.mode == "slow":
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: object) -> None:
        import socket

        assert self.upstream is not None and isinstance(client, socket.socket)
        server = socket.create_connection(self.upstream)
        self.held.append(server)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    time.sleep(self.delay_s)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(client, server), daemon=True).start()
        pump(server, client)

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        for s in self.held:
            try:
                s.close()
            except OSError:
                pass
