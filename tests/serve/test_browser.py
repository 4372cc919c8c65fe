"""The draw-a-digit page end to end in a real headless browser (Debian's chromium, Playwright).

A pointer draws a 7 stroke by stroke on the canvas; the page must show the server's answer for
that drawing, with the probability bars, the 28×28 input and the feature maps, update them as
the drawing grows, switch models, read an uploaded picture, and log no error (a broken script
or a Content-Security-Policy violation shows up in the console). With a vit it shows where the
network looks: the attention maps over the input.
"""

import json
import urllib.request

import pytest

# browser: skipped without chromium and Playwright (tests/conftest.py says how to get them);
# mnist: the cnn of server_url is trained on it (the vit's server needs none).
pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The strokes of a 7 on the 280×280 canvas, in canvas pixels: the bar, then the stem.
SEVEN = [[(70, 60), (210, 60)], [(210, 60), (120, 235)]]


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright  # the test extra: pip install -e '.[test]'

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield browser
        browser.close()


def open_page(browser, url, models):
    """The page at ``url`` once its menu lists ``models`` models; after the test, no error."""
    page = browser.new_page(viewport={"width": 1200, "height": 1100})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.goto(url + "/")
    # A function, not an expression: Playwright re-evaluates an expression with eval() at each
    # poll, which the page's Content-Security-Policy (no 'unsafe-eval') refuses whenever the
    # menu is not filled at the first look.
    page.wait_for_function(
        "count => document.querySelectorAll('#model option').length === count", arg=models
    )
    yield page
    assert page.errors == []
    page.close()


@pytest.fixture
def page(browser, server_url):
    yield from open_page(browser, server_url, 3)


@pytest.fixture
def vit_page(browser, vit_server_url):
    yield from open_page(browser, vit_server_url, 2)


def draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
        page.mouse.up()


def bar_heights(page):
    return page.eval_on_selector_all(".bar .fill", "bars => bars.map(b => b.style.height)")


def wait_for_answer(page, previous_bars):
    """Wait until the bars change from ``previous_bars`` and no request is pending."""
    page.wait_for_function(
        """previous => {
            const now = [...document.querySelectorAll('.bar .fill')].map(b => b.style.height);
            return JSON.stringify(now) !== JSON.stringify(previous);
        }""",
        arg=previous_bars,
    )
    page.wait_for_timeout(400)  # the last throttled request of the stroke


def server_answer(server_url, page, model=None):
    """The API's answer for what the canvas holds now."""
    image = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    body = json.dumps({"image": image, "model": model}).encode()
    request = urllib.request.Request(
        server_url + "/api/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.mnist
def test_drawing_a_seven_shows_the_answer_and_the_inside(page, server_url, tmp_path):
    assert page.locator("#digit").text_content() == "?"
    empty = bar_heights(page)

    draw(page, SEVEN[:1])  # the bar of the 7 alone
    wait_for_answer(page, empty)
    after_one_stroke = bar_heights(page)

    draw(page, SEVEN[1:])
    wait_for_answer(page, after_one_stroke)
    expected = server_answer(server_url, page)
    assert page.locator("#digit").text_content() == str(expected["digit"]) == "7"
    best = page.locator(".bar.best .label")
    assert best.text_content() == "7"
    heights = [float(h.rstrip("%")) for h in bar_heights(page)]
    assert heights[7] == max(heights) and abs(sum(heights) - 100) < 1

    # The 28×28 input holds ink, the feature maps and the output units are drawn.
    ink = page.evaluate(
        """() => {
            const canvas = document.getElementById('input');
            const pixels = canvas.getContext('2d').getImageData(0, 0, 28, 28).data;
            return pixels.filter((value, i) => i % 4 === 0 && value > 128).length;
        }"""
    )
    assert 30 < ink < 400
    assert page.locator(".layer").count() == 3
    assert page.locator(".maps canvas").count() == 32
    assert page.locator(".units span").count() == 10
    assert page.locator("#attention").is_hidden()  # a cnn has no attention to show
    page.screenshot(path=tmp_path / "draw-a-digit.png", full_page=True)

    page.click("#clear")
    assert page.locator("#digit").text_content() == "?"
    assert page.locator(".layer").count() == 0


@pytest.mark.mnist
def test_switching_models_and_uploading_a_picture(page, server_url, mnist_test, tmp_path):
    x_test, y_test = mnist_test
    picture = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray(255 - x_test[0]).resize((140, 140)).save(picture)
    empty = bar_heights(page)
    page.set_input_files("#upload", str(picture))
    wait_for_answer(page, empty)
    assert page.locator("#digit").text_content() == str(y_test[0])
    assert "digit.png, read by cnn/model.npz" in page.locator("#status").text_content()

    cnn_bars = bar_heights(page)
    page.select_option("#model", "mlp.npz")
    wait_for_answer(page, cnn_bars)
    assert "read by mlp.npz" in page.locator("#status").text_content()
    # The MLP has two hidden Dense layers and the output: no feature maps.
    assert page.locator(".maps canvas").count() == 0
    assert page.locator(".layer").count() == 3


def test_a_vit_shows_where_it_looks(vit_page, vit_server_url, tmp_path):
    """Drawing a 7 for the vit: its attention maps appear over the input, one per head of each
    layer and the rollout, painted from the server's numbers, and go when a model without
    attention is chosen."""
    page = vit_page
    assert page.locator("#attention").is_hidden()
    empty = bar_heights(page)
    draw(page, SEVEN)
    wait_for_answer(page, empty)
    expected = server_answer(server_url=vit_server_url, page=page)
    assert page.locator("#digit").text_content() == str(expected["digit"])
    assert page.locator("#attention").is_visible()
    # The rollout, then 2 layers of 2 heads, each a 28×28 canvas over the digit.
    assert page.locator(".attention-row").count() == 3
    assert page.locator(".attention-maps canvas").count() == 5
    captions = page.locator(".attention-maps figcaption").all_text_contents()
    assert captions == ["rollout", "head 1", "head 2", "head 1", "head 2"]
    assert page.locator(".attention-row h3").nth(1).text_content().startswith("block1_attention")
    # Where the input is black the colour is the map's alone, brighter for a larger weight
    # (the colour scale's R + G + B grows along it): patch by patch, the painted brightness
    # follows the server's weights, rows and columns the right way round.
    brightness = page.evaluate(
        """input => [...document.querySelectorAll('.attention-maps canvas')].map(canvas => {
            const data = canvas.getContext('2d').getImageData(0, 0, 28, 28).data;
            const sums = Array.from({length: 16}, () => [0, 0]);
            for (let i = 0; i < 28; i += 1) for (let j = 0; j < 28; j += 1) {
                if (input[i][j] !== 0) continue;
                const at = 4 * (28 * i + j), cell = sums[4 * Math.floor(i / 7) + Math.floor(j / 7)];
                cell[0] += data[at] + data[at + 1] + data[at + 2];
                cell[1] += 1;
            }
            return sums.map(([total, count]) => count ? total / count : null);
        })""",
        expected["input"],
    )
    attention = expected["attention"]
    maps = [attention["rollout"]] + [h for layer in attention["layers"] for h in layer["heads"]]
    for painted, weights in zip(brightness, maps, strict=True):
        pairs = sorted((w, b) for w, b in zip(sum(weights, []), painted) if b is not None)
        assert len(pairs) >= 8
        values = [b for _, b in pairs]
        assert all(later >= earlier - 3 for earlier, later in zip(values, values[1:])), pairs
        assert values[-1] - values[0] > 20  # the maps are not flat
    page.screenshot(path=tmp_path / "draw-a-digit-vit.png", full_page=True)

    vit_bars = bar_heights(page)
    page.select_option("#model", "mlp.npz")
    wait_for_answer(page, vit_bars)
    assert page.locator("#attention").is_hidden()
    assert page.locator(".attention-maps canvas").count() == 0
