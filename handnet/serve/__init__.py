"""``handnet serve``: a local web page where you draw a digit and watch the network read it.

    registry = ModelRegistry.from_path("runs")            # the models to offer
    server = make_server(registry, "127.0.0.1", 8000)     # http.server, standard library only
    server.serve_forever()

api.py holds the JSON API as pure functions, server.py the HTTP routes, models.py the models,
static/ the page (plain HTML, CSS and JavaScript, served by the server itself: no CDN).
"""

from .models import ModelRegistry
from .server import make_server

__all__ = ["ModelRegistry", "make_server"]
