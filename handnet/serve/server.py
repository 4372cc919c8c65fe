"""The HTTP side of ``handnet serve``: routes, headers and error handling (the standard library's
http.server; the work itself is in api.py).

    GET  /                 the page (static/index.html)
    GET  /static/<file>    its script and style sheet
    GET  /api/models       the models served and the default one
    POST /api/predict      a drawing -> the digit, the probabilities and the look inside

Every error is answered in JSON, {"error": "..."}: 4xx for a bad request, 500 (details in the
server's log, never in the answer) for a bug.

A server listening on a loopback address answers only requests whose Host is a loopback name
(localhost, 127.0.0.1, [::1]). Otherwise a web page elsewhere could point its own domain name at
127.0.0.1 ("DNS rebinding") and use the server from the visitor's browser as if it were its own.
"""

import ipaddress
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from ..errors import HandnetError
from . import api

log = logging.getLogger("handnet.serve")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: The page needs nothing from elsewhere: it may load only the server's own files, and images
#: from data: URLs (an uploaded picture).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_files():
    """{url path: (bytes, content type)} of everything in handnet/serve/static/."""
    folder = resources.files(__package__) / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[f"/static/{entry.name}"] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    files["/"] = files["/static/index.html"]
    return files


def make_server(registry, host="127.0.0.1", port=8000):
    """A ThreadingHTTPServer for ``registry`` listening on (host, port); port 0 picks a free
    one (see server.server_address). Call serve_forever() to run it."""

    class Handler(RequestHandler):
        pass

    Handler.registry = registry
    Handler.files = static_files()
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    Handler.loopback_only = _is_loopback(server.server_address[0])
    return server


def _is_loopback(host):
    """True for "localhost" and the loopback addresses (127.0.0.0/8, ::1), False otherwise."""
    if host is None or host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return host is not None
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost
        return False


class RequestHandler(BaseHTTPRequestHandler):
    registry = None
    files = None
    loopback_only = True
    server_version = "handnet"
    # Keep-alive: the page sends a request every ~100 ms while the user draws.
    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes; with Nagle's algorithm the body would wait
    # for the client's delayed ACK of the headers (up to 40 ms on Linux).
    disable_nagle_algorithm = True
    # Seconds a client may take to send its request (a slow or stalled client frees its thread).
    timeout = 10

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def do_PUT(self):
        self._answer(self._refuse_method)

    do_DELETE = do_PATCH = do_PUT

    def _refuse_method(self, path):
        raise api.RequestError(405, f"{self.command} is not supported: use GET or POST")

    def _get(self, path):
        if path == "/api/models":
            return 200, self.registry.describe()
        if path in self.files:
            return 200, self.files[path]
        if path == "/api/predict":
            raise api.RequestError(405, "POST a drawing to /api/predict (GET lists nothing)")
        raise api.RequestError(404, f"nothing at {path}")

    def _post(self, path):
        if path != "/api/predict":
            known = path in self.files or path == "/api/models"
            raise api.RequestError(405 if known else 404, f"cannot POST to {path}")
        length = api.body_length(self.headers["Content-Type"], self.headers["Content-Length"])
        payload = api.parse_body(self.rfile.read(length))
        try:
            served = self.registry.get(api.model_id(payload))
        except HandnetError as error:
            raise api.RequestError(400, str(error)) from None
        return 200, api.predict(served, api.digit_from_payload(payload))

    def _answer(self, route):
        try:
            self._check_host()
            status, content = route(urlsplit(self.path).path)
        except api.RequestError as error:
            # The body may be unread (refused by its headers): end the connection after this.
            self.close_connection = True
            status, content = error.status, {"error": str(error)}
        except Exception:
            log.exception("handnet serve: error while answering %s %s", self.command, self.path)
            self.close_connection = True
            status, content = 500, {"error": "internal server error (the server's log has details)"}
        self._send(status, content)

    def _check_host(self):
        # Browsers always send Host; a client without one (HTTP/1.0 tools) is no rebinding page.
        host = self.headers["Host"]
        if not self.loopback_only or host is None:
            return
        try:
            name = urlsplit("//" + host).hostname
        except ValueError:
            name = None
        if not _is_loopback(name):
            raise api.RequestError(
                403,
                f"this server answers only to localhost, 127.0.0.1 or [::1], not to Host {host!r} "
                f"(to reach it from elsewhere, start it with --host 0.0.0.0)",
            )

    def send_error(self, code, message=None, explain=None):
        # http.server's own refusals (a malformed request line, headers too long, an unknown
        # method) are answered in JSON too.
        self.close_connection = True
        self._send(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def _send(self, status, content):
        if isinstance(content, dict):
            content = (json.dumps(content, separators=(",", ":")).encode(), "application/json")
        body, content_type = content
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        # No line per request: they would scroll by ten times a second while someone draws.
        pass

    def log_error(self, format, *args):
        # http.server reports here the requests it refused itself (answered with a 4xx already)
        # and keep-alive connections that went idle past `timeout`: not worth a warning.
        log.debug("%s: " + format, self.address_string(), *args)
