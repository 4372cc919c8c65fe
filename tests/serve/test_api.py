"""handnet serve's JSON API over real HTTP: the model's own answers, and every bad request → 4xx."""

import base64
import io
import json
import socket
import threading
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from handnet.preprocess import prepare_images, read_digit
from handnet.serve import api, make_server

pytestmark = pytest.mark.mnist


def request(url, path, body=None, content_type="application/json", method=None):
    """(status, headers, decoded JSON or raw bytes) of one request."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    headers = {"Content-Type": content_type} if data is not None else {}
    call = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    is_json = headers["Content-Type"] == "application/json"
    return status, headers, json.loads(raw) if is_json else raw


def raw_request(url, head, body=b""):
    """Send hand-written request headers (and maybe a body); (status, JSON answer)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(head.encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def png_data_url(digit, scale=10, dark_on_light=True):
    """An MNIST digit (28, 28) uint8 drawn larger, as a base64 PNG data URL."""
    pixels = 255 - digit if dark_on_light else digit
    image = Image.fromarray(pixels).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_models_lists_the_folder_and_defaults_to_the_cnn(server_url):
    status, _, listing = request(server_url, "/api/models")
    assert status == 200
    assert listing["default"] == "cnn/model.npz"
    by_id = {model["id"]: model for model in listing["models"]}
    assert set(by_id) == {"cnn/model.npz", "mlp.npz", "keras/mlp.keras"}
    assert by_id["cnn/model.npz"]["layers"][0] == "Conv2D"
    assert by_id["keras/mlp.keras"]["file"] == "keras"
    assert by_id["mlp.npz"]["input_shape"] == [784]


def test_pixels_get_the_models_own_answer(server_url, registry, mnist_test):
    x_test, _ = mnist_test
    model = registry.get("cnn/model.npz").model
    expected = model.predict(prepare_images(x_test[:5], model.input_shape))
    for digit, probabilities in zip(x_test[:5], expected):
        status, _, answer = request(server_url, "/api/predict", {"pixels": digit.tolist()})
        assert status == 200
        assert answer["model"] == "cnn/model.npz"
        assert answer["digit"] == probabilities.argmax()
        np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-5)
        np.testing.assert_allclose(answer["input"], digit / 255, atol=1e-3)


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_an_image_is_prepared_as_handnet_predict_prepares_it(
    server_url, registry, mnist_test, tmp_path, dark_on_light
):
    x_test, y_test = mnist_test
    model = registry.get().model
    for index in range(3):
        data_url = png_data_url(x_test[index], dark_on_light=dark_on_light)
        path = tmp_path / f"{index}.png"
        path.write_bytes(base64.b64decode(data_url.partition(",")[2]))
        seen = read_digit(path)  # what `handnet predict MODEL path` feeds the network
        expected = model.predict(prepare_images(seen[None], model.input_shape))[0]
        status, _, answer = request(server_url, "/api/predict", {"image": data_url})
        assert status == 200
        np.testing.assert_allclose(answer["input"], seen, atol=1e-3)
        assert answer["digit"] == expected.argmax() == y_test[index]


def test_activations_summarize_each_conv_and_dense_layer(server_url, registry, mnist_test):
    x_test, _ = mnist_test
    status, _, answer = request(server_url, "/api/predict", {"pixels": x_test[0].tolist()})
    assert status == 200
    layers = answer["activations"]
    # Layer names depend on how many layers the process built before (conv2d, conv2d_1, …).
    model = registry.get().model
    names = [layer.name for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert list(layers) == names and len(names) == 3
    first, second, dense = (layers[name] for name in names)
    assert first["shape"] == [26, 26, 32]
    maps = np.array(first["maps"])
    assert maps.shape == (16, 26, 26)  # the first 16 of 32 channels
    assert maps.min() >= 0 and maps.max() == 255
    assert np.array(second["maps"]).shape == (16, 11, 11)
    assert dense["activation"] == "softmax"
    np.testing.assert_allclose(dense["values"], answer["probabilities"], atol=1e-4)


def test_the_model_key_picks_a_served_model(server_url, registry, mnist_test):
    x_test, _ = mnist_test
    keras_mlp = registry.get("keras/mlp.keras").model
    expected = keras_mlp.predict(prepare_images(x_test[:1], (784,)))[0]
    body = {"pixels": x_test[0].tolist(), "model": "keras/mlp.keras"}
    status, _, answer = request(server_url, "/api/predict", body)
    assert status == 200
    assert answer["model"] == "keras/mlp.keras"
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)
    hidden = next(iter(answer["activations"].values()))  # the first Dense layer, 256 ReLUs
    assert hidden["shape"] == [256] and len(hidden["values"]) == 256


def _pixels(value=0):
    return [[value] * 28 for _ in range(28)]


def _image(image):
    return {"image": base64.b64encode(png_bytes(image)).decode()}


BAD_BODIES = {
    "not JSON": (b"{", "not valid JSON"),
    "not UTF-8": (b"\xff\xfe", "not valid JSON"),
    "a JSON list": ([1, 2], "expected a JSON object"),
    "neither key": ({}, 'exactly one of "image" and "pixels"'),
    "both keys": ({"image": "", "pixels": _pixels()}, "exactly one"),
    "image not a string": ({"image": 7}, '"image" must be a string'),
    "image bad base64": ({"image": "data:image/png;base64,@@@"}, "not valid base64"),
    "image not a data URL": ({"image": "data:image/png,abc"}, "base64 data URL"),
    "image not an image": ({"image": base64.b64encode(b"hello").decode()}, "not an image"),
    "image truncated": (
        {"image": base64.b64encode(png_bytes(Image.new("L", (50, 50), 9))[:60]).decode()},
        "cannot decode",
    ),
    "image too large": (_image(Image.new("L", (4097, 4096))), "4097×4096 pixels is larger"),
    "image blank": (_image(Image.new("L", (100, 100), 255)), "no ink found"),
    "pixels 27 rows": ({"pixels": _pixels()[:27]}, "28 rows of 28 numbers"),
    "pixels ragged": ({"pixels": _pixels()[:27] + [[0] * 27]}, "28 rows of 28 numbers"),
    "pixels text": ({"pixels": [["0"] * 28] * 28}, "numbers only"),
    "pixels booleans": ({"pixels": [[True] * 28] * 28}, "numbers only"),
    "pixels over 255": ({"pixels": _pixels(256)}, "0..255"),
    "pixels negative": ({"pixels": _pixels(-1)}, "0..255"),
    "unknown model": ({"pixels": _pixels(), "model": "nope"}, "unknown model 'nope'"),
    "model not a string": ({"pixels": _pixels(), "model": ["a"]}, '"model" must be a string'),
}


@pytest.mark.parametrize("body, message", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_body_gets_400_with_a_json_error(server_url, body, message):
    status, headers, answer = request(server_url, "/api/predict", body)
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert message in answer["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_gets_415(server_url, content_type):
    status, _, answer = request(server_url, "/api/predict", {"pixels": _pixels()}, content_type)
    assert status == 415
    assert "application/json" in answer["error"]


def test_a_json_content_type_with_a_charset_is_accepted(server_url, mnist_test):
    body = {"pixels": mnist_test[0][0].tolist()}
    assert request(server_url, "/api/predict", body, "application/json; charset=utf-8")[0] == 200


def test_an_oversized_body_is_refused_before_it_is_read(server_url):
    # The claimed body is never sent: a server that tried to read it would wait, not answer.
    length = api.MAX_BODY_BYTES + 1
    head = (
        "POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}"
    )
    status, answer = raw_request(server_url, head)
    assert status == 413
    assert f"{length:,} bytes" in answer["error"]


@pytest.mark.parametrize(
    "length_header, status",
    [("", 411), ("Content-Length: ten\r\n", 400), ("Content-Length: -5\r\n", 400)],
)
def test_a_missing_or_malformed_length_is_refused(server_url, length_header, status):
    head = (
        "POST /api/predict HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Type: application/json\r\n{length_header}"
    )
    assert raw_request(server_url, head.rstrip("\r\n"))[0] == status


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/nothing", 404),
        ("GET", "/static/../api.py", 404),
        ("GET", "/api/predict", 405),
        ("POST", "/api/models", 405),
        ("PUT", "/api/predict", 405),
        ("DELETE", "/", 405),
    ],
)
def test_wrong_paths_and_methods_get_json_errors(server_url, method, path, status):
    body = b"{}" if method in ("POST", "PUT") else None
    answer = request(server_url, path, body, method=method)
    assert answer[0] == status
    assert "error" in answer[2]


def test_a_request_http_server_refuses_itself_gets_a_json_4xx(server_url):
    head = "GET / HTTP/1.1\r\n" + "\r\n".join(f"X-{i}: y" for i in range(150))
    status, answer = raw_request(server_url, head)
    assert status == 431  # too many header lines
    assert "error" in answer


def test_a_bug_is_a_500_without_the_traceback_and_is_logged(
    server_url, mnist_test, monkeypatch, caplog
):
    def broken(served, digit):
        raise RuntimeError("secret detail of the bug")

    monkeypatch.setattr(api, "predict", broken)
    status, _, answer = request(server_url, "/api/predict", {"pixels": mnist_test[0][0].tolist()})
    assert status == 500
    assert "secret" not in answer["error"] and "Traceback" not in answer["error"]
    assert "secret detail of the bug" in caplog.text


def test_the_page_is_served_with_its_files_and_nothing_from_elsewhere(server_url):
    status, headers, page = request(server_url, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for path in ("/static/app.js", "/static/style.css"):
        assert path.encode() in page
        status, headers, content = request(server_url, path)
        assert status == 200
        assert b"http://" not in content and b"https://" not in content  # no CDN
    assert request(server_url, "/static/app.js")[1]["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "app.localhost", None])
def test_loopback_host_names_are_answered(server_url, host):
    port = urlsplit(server_url).port
    head = "GET /api/models HTTP/1.1\r\nConnection: close"
    head += f"\r\nHost: {host}:{port}" if host else ""
    status, answer = raw_request(server_url, head)
    assert status == 200 and "models" in answer


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "192.168.1.5", "[bad"])
def test_other_host_names_are_refused_by_a_loopback_server(server_url, host):
    """A page whose domain name was pointed at 127.0.0.1 (DNS rebinding) gets nothing."""
    head = f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2"
    status, answer = raw_request(server_url, head + "\r\nContent-Type: application/json", b"{}")
    assert status == 403
    assert "answers only to localhost" in answer["error"] and "--host 0.0.0.0" in answer["error"]


def test_a_server_listening_on_every_address_answers_any_host(registry):
    server = make_server(registry, "0.0.0.0", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        status, answer = raw_request(
            url, "GET /api/models HTTP/1.1\r\nHost: my-lan-pc\r\nConnection: close"
        )
        assert status == 200 and "models" in answer
    finally:
        server.shutdown()
        server.server_close()
