// The draw-a-digit page: draw on #pad, send the drawing to POST /api/predict, show the answer.
"use strict";

const pad = document.getElementById("pad");
const context = pad.getContext("2d");
const modelSelect = document.getElementById("model");
const statusLine = document.getElementById("status");

// MNIST strokes are 2–3 pixels wide in 28×28, so about 20 in this 280×280 canvas.
const STROKE_WIDTH = 20;
// While the user draws, ask for a prediction at most this often (and once more at the end).
const PREDICT_EVERY_MS = 100;
const MAX_UPLOAD_BYTES = 6 * 1024 * 1024; // the server reads bodies up to 8 MiB of base64
const DATASET_NAMES = { mnist: "MNIST", fashion: "Fashion-MNIST" };

// Colours of a feature-map value from 0 (dark) to 1 (bright): the "inferno" colour map.
const COLOUR_STOPS = [
  [0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164],
];

const state = {
  models: [],
  hasInk: false,
  upload: null,      // data URL of an uploaded picture, sent as it is until the user draws
  uploadName: "",
  generation: 0,     // bumped by Clear: answers to older drawings are dropped
  timer: null,
  inFlight: false,
  again: false,      // the drawing changed while a request was in flight
  layersKey: "",
  layerViews: new Map(), // layer name -> its section in "Look inside"
  attentionKey: "",      // the layers and heads the attention maps were built for
};

// How much of an attention map's colour covers the grey digit under it.
const ATTENTION_OPACITY = 0.55;

// -- drawing ---------------------------------------------------------------------------------
let lastPoint = null;

function clearPad() {
  context.fillStyle = "white";
  context.fillRect(0, 0, pad.width, pad.height);
  context.lineCap = "round";
  context.lineJoin = "round";
  context.lineWidth = STROKE_WIDTH;
  context.strokeStyle = "#111";
  context.fillStyle = "#111";
}

function padPoint(event) {
  // The canvas may be shown smaller than its 280×280 pixels (a phone): scale to its pixels.
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) / box.width) * pad.width,
    y: ((event.clientY - box.top) / box.height) * pad.height,
  };
}

function strokeTo(point) {
  context.beginPath();
  context.moveTo(lastPoint.x, lastPoint.y);
  context.lineTo(point.x, point.y);
  context.stroke();
  lastPoint = point;
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  lastPoint = padPoint(event);
  context.beginPath();
  context.arc(lastPoint.x, lastPoint.y, STROKE_WIDTH / 2, 0, 2 * Math.PI);
  context.fill();
  drawingChanged();
});

pad.addEventListener("pointermove", (event) => {
  if (lastPoint === null) return;
  // A fast hand moves several pixels between two events; the coalesced ones fill the gap.
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) strokeTo(padPoint(each));
  drawingChanged();
});

for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (lastPoint === null) return;
    lastPoint = null;
    predictSoon();
  });
}

function drawingChanged() {
  state.hasInk = true;
  state.upload = null;
  predictSoon();
}

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  state.hasInk = false;
  state.upload = null;
  state.generation += 1;
  showEmpty();
  setStatus("Use a mouse, a pen or a finger.");
});

document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = ""; // choosing the same file again should load it again
  if (!file) return;
  if (file.size > MAX_UPLOAD_BYTES) {
    setStatus(`That file has ${(file.size / 1e6).toFixed(1)} MB; pictures up to 6 MB are read.`, true);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => showUpload(reader.result, file.name);
  reader.readAsDataURL(file);
});

function showUpload(dataUrl, name) {
  const image = new Image();
  image.onload = () => {
    // Show the picture in the drawing area (fitted, centred); the original is what is sent.
    clearPad();
    const scale = Math.min(pad.width / image.width, pad.height / image.height);
    const width = image.width * scale, height = image.height * scale;
    context.drawImage(image, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
    state.hasInk = true;
    state.upload = dataUrl;
    state.uploadName = name;
    state.generation += 1;
    setStatus(`Reading ${name}. Draw on it to change it, or Clear.`);
    predictSoon();
  };
  image.onerror = () => setStatus(`${name} is not a picture this browser can open.`, true);
  image.src = dataUrl;
}

// -- asking the server -----------------------------------------------------------------------
function predictSoon() {
  if (state.timer === null) {
    state.timer = setTimeout(() => {
      state.timer = null;
      predict();
    }, PREDICT_EVERY_MS);
  }
}

async function predict() {
  if (!state.hasInk) return;
  if (state.inFlight) {
    state.again = true;
    return;
  }
  state.inFlight = true;
  const generation = state.generation;
  const body = {
    image: state.upload || pad.toDataURL("image/png"),
    model: modelSelect.value || undefined,
  };
  try {
    const response = await fetch("/api/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (generation === state.generation) {
      if (response.ok) {
        showAnswer(answer);
      } else {
        setStatus(answer.error || `The server answered ${response.status}.`, true);
      }
    }
  } catch (error) {
    setStatus("No answer from the server: is handnet serve still running?", true);
  } finally {
    state.inFlight = false;
    if (state.again) {
      state.again = false;
      predict();
    }
  }
}

async function loadModels() {
  try {
    const response = await fetch("/api/models");
    const listing = await response.json();
    state.models = listing.models;
    for (const model of listing.models) {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = `${model.id} (${model.name})`;
      option.selected = model.id === listing.default;
      modelSelect.append(option);
    }
    describeModel();
  } catch (error) {
    setStatus("Could not list the models: is handnet serve running?", true);
  }
}

modelSelect.addEventListener("change", () => {
  describeModel();
  state.layersKey = "";
  predictSoon();
});

function describeModel() {
  const model = state.models.find((each) => each.id === modelSelect.value);
  if (!model) return;
  const layers = model.layers.filter((name) => name !== "Dropout").join(" → ");
  const accuracy = model.test_accuracy === null ? ""
    : ` · ${(100 * model.test_accuracy).toFixed(2)} % right on the ${DATASET_NAMES[model.dataset] || "its"} test set`;
  document.getElementById("model-info").textContent =
    `${layers} · ${model.parameters.toLocaleString("en")} weights${accuracy}`;
}

// -- showing the answer ----------------------------------------------------------------------
const bars = [];
for (let digit = 0; digit < 10; digit += 1) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.innerHTML = '<span class="value"></span><span class="fill"></span><span class="label"></span>';
  bar.querySelector(".label").textContent = digit;
  document.getElementById("bars").append(bar);
  bars.push(bar);
}

function showAnswer(answer) {
  const best = answer.digit;
  document.getElementById("digit").textContent = best;
  const confidence = 100 * answer.probabilities[best];
  document.getElementById("confidence").textContent =
    `${confidence.toFixed(confidence > 99.5 ? 1 : 0)} % sure`;
  answer.probabilities.forEach((probability, digit) => {
    const bar = bars[digit];
    bar.classList.toggle("best", digit === best);
    bar.querySelector(".fill").style.height = `${Math.max(probability * 100, 0)}%`;
    bar.querySelector(".value").textContent =
      probability >= 0.005 ? `${Math.round(probability * 100)}%` : "";
  });
  drawInput(answer.input);
  showAttention(answer.attention, answer.input);
  showLayers(answer.activations);
  const source = state.upload ? state.uploadName : "Your drawing";
  setStatus(`${source}, read by ${answer.model} in ${answer.milliseconds} ms.`);
}

function showEmpty() {
  document.getElementById("digit").textContent = "?";
  document.getElementById("confidence").textContent = "Draw a digit to begin.";
  for (const bar of bars) {
    bar.classList.remove("best");
    bar.querySelector(".fill").style.height = "0";
    bar.querySelector(".value").textContent = "";
  }
  const input = document.getElementById("input");
  input.getContext("2d").clearRect(0, 0, input.width, input.height);
  document.getElementById("layers").innerHTML =
    '<p class="placeholder">Draw a digit to see inside the network.</p>';
  state.layersKey = "";
  showAttention(undefined);
}

function drawInput(rows) {
  const canvas = document.getElementById("input");
  paint(canvas, rows, (value) => {
    const grey = Math.round(255 * value);
    return [grey, grey, grey];
  });
}

// Paint a 2-D array on a canvas of its size, one pixel per value; CSS enlarges it sharply.
function paint(canvas, rows, colourOf) {
  canvas.height = rows.length;
  canvas.width = rows[0].length;
  const drawing = canvas.getContext("2d");
  const image = drawing.createImageData(canvas.width, canvas.height);
  rows.forEach((row, i) => row.forEach((value, j) => {
    const [r, g, b] = colourOf(value, i, j);
    image.data.set([r, g, b, 255], 4 * (i * canvas.width + j));
  }));
  drawing.putImageData(image, 0, 0);
}

function colour(fraction) {
  const position = Math.min(Math.max(fraction, 0), 1) * (COLOUR_STOPS.length - 1);
  const low = Math.floor(position), high = Math.min(low + 1, COLOUR_STOPS.length - 1);
  const t = position - low;
  return COLOUR_STOPS[low].map((start, k) => Math.round(start + t * (COLOUR_STOPS[high][k] - start)));
}

function showLayers(activations) {
  const names = Object.keys(activations);
  const container = document.getElementById("layers");
  const key = names.join(",");
  if (key !== state.layersKey) {
    state.layerViews = new Map(names.map((name) => [name, layerView(name, activations[name])]));
    container.replaceChildren(...state.layerViews.values());
    state.layersKey = key;
  }
  for (const name of names) updateLayer(state.layerViews.get(name), activations[name]);
}

// A heading "name  Type → shape": the name comes from the model file, so it is set as text.
function layerTitle(name, detail) {
  const title = document.createElement("h3");
  const code = document.createElement("code");
  code.textContent = detail;
  title.append(`${name} `, code);
  return title;
}

function layerView(name, summary) {
  const section = document.createElement("div");
  section.className = "layer";
  let title;
  const about = document.createElement("p");
  about.className = "hint about";
  const shape = summary.shape.join(" × ");
  const body = document.createElement("div");
  if (summary.type === "Conv2D") {
    const [height, width, channels] = summary.shape;
    title = layerTitle(name, `Conv2D → ${shape}`);
    about.textContent = channels > summary.maps.length
      ? `${channels} feature maps of ${height} × ${width}, one per filter; the first ${summary.maps.length} are shown.`
      : `${channels} feature maps of ${height} × ${width}, one per filter.`;
    body.className = "maps";
    summary.maps.forEach((_, k) => {
      const canvas = document.createElement("canvas");
      canvas.title = `${name}, channel ${k}`;
      body.append(canvas);
    });
  } else {
    title = layerTitle(name, `Dense → ${shape}, ${summary.activation}`);
    body.className = "units";
    summary.values.forEach((_, k) => {
      const cell = document.createElement("span");
      if (summary.values.length <= 10) cell.textContent = k;
      body.append(cell);
    });
  }
  section.append(title, about, body);
  return section;
}

function updateLayer(section, summary) {
  const body = section.lastElementChild;
  if (summary.type === "Conv2D") {
    [...body.children].forEach((canvas, k) => paint(canvas, summary.maps[k], (v) => colour(v / 255)));
    return;
  }
  const peak = Math.max(...summary.values, 1e-12);
  const active = summary.values.filter((value) => value > 0).length;
  [...body.children].forEach((cell, k) => {
    const value = summary.values[k];
    const fraction = value / peak;
    cell.style.background = `rgb(${colour(fraction).join(",")})`;
    cell.style.color = fraction > 0.6 ? "black" : "white"; // the bright end of the colours is yellow
    cell.title = `unit ${k}: ${value.toFixed(3)}`;
  });
  const total = summary.shape[0];
  section.querySelector(".about").textContent = summary.activation === "softmax"
    ? "The output: one unit per digit, the probabilities of the bar chart."
    : `${active} of ${total} units active (above 0)` +
      (summary.values.length < total ? `; the first ${summary.values.length} are shown.` : ".");
}

// -- where a transformer looks --------------------------------------------------------------
// answer.attention (a model with MultiHeadAttention layers only): {"grid": [S, S],
// "layers": [{"name", "heads": [S × S map] per head}], "rollout": S × S map}, each map summing
// to 1 over the patches. Each is drawn over the 28 × 28 input, one square per patch.
function showAttention(attention, input) {
  const container = document.getElementById("attention");
  const maps = document.getElementById("attention-maps");
  if (!attention) {
    container.hidden = true;
    maps.replaceChildren();
    state.attentionKey = "";
    return;
  }
  const key = attention.layers.map((layer) => `${layer.name}:${layer.heads.length}`).join(",");
  if (key !== state.attentionKey) {
    maps.replaceChildren(
      attentionRow("rollout", `all ${attention.layers.length} layers`, ["rollout"]),
      ...attention.layers.map((layer) =>
        attentionRow(layer.name, `MultiHeadAttention, ${layer.heads.length} heads`,
          layer.heads.map((_, h) => `head ${h + 1}`))),
    );
    state.attentionKey = key;
  }
  const rows = [...maps.children];
  const [rolloutRow, ...layerRows] = rows;
  paintAttention(rolloutRow.querySelector("canvas"), input, attention.rollout);
  attention.layers.forEach((layer, l) => {
    layerRows[l].querySelectorAll("canvas").forEach(
      (canvas, h) => paintAttention(canvas, input, layer.heads[h]));
  });
  container.hidden = false;
}

// One row of maps: a heading, then a captioned canvas per map.
function attentionRow(name, detail, captions) {
  const row = document.createElement("div");
  row.className = "attention-row";
  const figures = document.createElement("div");
  figures.className = "attention-maps";
  for (const caption of captions) {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.title = `${name}, ${caption}`;
    const label = document.createElement("figcaption");
    label.textContent = caption;
    figure.append(canvas, label);
    figures.append(figure);
  }
  row.append(layerTitle(name, detail), figures);
  return row;
}

// The grey input, and over it the map (scaled by its largest weight) upsampled to the input's
// pixels: pixel (i, j) lies in patch (⌊i·S/28⌋, ⌊j·S/28⌋).
function paintAttention(canvas, input, map) {
  const side = map.length, size = input.length;
  const peak = Math.max(...map.flat(), 1e-12);
  const weights = input.map((row, i) => row.map((_, j) =>
    map[Math.floor((i * side) / size)][Math.floor((j * side) / input[0].length)] / peak));
  paint(canvas, weights, (weight, i, j) => {
    const grey = 255 * input[i][j];
    return colour(weight).map((c) => Math.round(ATTENTION_OPACITY * c + (1 - ATTENTION_OPACITY) * grey));
  });
}

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

clearPad();
showEmpty();
loadModels();
