// Drawing pad -> POST /api/predict -> the number, a box per digit, bars. Plain JS, no build step.
"use strict";

const API_URL = "/api/predict";
const DEBOUNCE_MS = 150; // long enough to batch pointer moves, short enough to feel live
const INK = "#fff";
const PAPER = "#000"; // MNIST is light ink on black; the server accepts either polarity
const NUM_CLASSES = 10;
const BOX_COLOUR = "#3b6cf6";
const SELECTED_BOX_COLOUR = "#f6a53b";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const boxesEl = document.getElementById("boxes"); // drawn over the pad, never sent
const boxesCtx = boxesEl.getContext("2d");
const digitsEl = document.getElementById("digits");
const digitEl = document.getElementById("digit");
const confidenceEl = document.getElementById("confidence");
const preprocessedEl = document.getElementById("preprocessed");
const barsEl = document.getElementById("bars");
const statusEl = document.getElementById("status");
const uploadEl = document.getElementById("upload");

let last = null; // the previous point of the stroke being drawn, or null
let hasInk = false;
let timer = 0;
let latestRequest = 0; // responses to older requests are dropped
let shown = null; // the last answer, and which of its digits the bars show
let selected = 0;

function makeBars() {
  for (let digit = 0; digit < NUM_CLASSES; digit++) {
    const row = document.createElement("li");
    row.innerHTML = `<span class="name">${digit}</span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
    barsEl.append(row);
  }
}

function showBars(probabilities) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  [...barsEl.children].forEach((row, digit) => {
    const p = probabilities[digit];
    row.querySelector(".fill").style.width = `${100 * p}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    row.classList.toggle("best", digit === best);
  });
}

// A box around each digit found, in canvas pixels (the server answers in the image's pixels).
function drawBoxes() {
  boxesCtx.clearRect(0, 0, boxesEl.width, boxesEl.height);
  if (!shown || !shown.fromPad) return;
  const scale = boxesEl.width / shown.size[0];
  boxesCtx.lineWidth = 3;
  shown.digits.forEach((digit, n) => {
    const [left, top, right, bottom] = digit.box.map((v) => v * scale);
    boxesCtx.strokeStyle = n === selected ? SELECTED_BOX_COLOUR : BOX_COLOUR;
    boxesCtx.strokeRect(left - 4, top - 4, right - left + 8, bottom - top + 8);
  });
}

function select(n) {
  selected = n;
  const digit = shown.digits[n];
  preprocessedEl.src = digit.preprocessed;
  showBars(digit.probabilities);
  [...digitsEl.children].forEach((el, m) => el.setAttribute("aria-pressed", String(m === n)));
  drawBoxes();
}

// The server lists every candidate with its own verdict; the number is made of the digits.
function showResult(reading) {
  if (!reading.is_digit) {
    // "Not a digit" replaces the answer and its bars: a confident bar would lie.
    resetResult("that doesn't look like a digit");
    digitEl.textContent = "?";
    const likeliest = reading.digits.reduce((a, b) => (b.confidence > a.confidence ? b : a));
    preprocessedEl.src = likeliest.preprocessed;
    statusEl.textContent = `${reading.elapsed_ms} ms on the server`;
    return;
  }
  const result = { ...reading, digits: reading.digits.filter((d) => d.is_digit) };
  shown = result;
  digitEl.textContent = result.number;
  digitEl.classList.toggle("long", result.number.length > 2);
  const sure = result.digits.map((d) => `${(100 * d.confidence).toFixed(1)}%`);
  confidenceEl.textContent =
    result.digits.length === 1
      ? `${sure[0]} sure`
      : result.digits.map((d, n) => `${d.digit}: ${sure[n]}`).join(", ");
  digitsEl.replaceChildren(
    ...result.digits.map((digit, n) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "found";
      button.title = `digit ${n + 1}: ${digit.digit}, ${sure[n]}`;
      button.innerHTML = `<img alt="28×28 of digit ${n + 1}" width="42" height="42"><span>${digit.digit}</span>`;
      button.querySelector("img").src = digit.preprocessed;
      button.addEventListener("click", () => select(n));
      return button;
    }),
  );
  select(Math.min(selected, result.digits.length - 1));
  statusEl.textContent = `${result.elapsed_ms} ms on the server`;
}

function resetResult(message) {
  shown = null;
  selected = 0;
  digitEl.textContent = "–";
  digitEl.classList.remove("long");
  confidenceEl.textContent = message;
  preprocessedEl.removeAttribute("src");
  digitsEl.replaceChildren();
  drawBoxes();
  for (const row of barsEl.children) {
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "";
    row.classList.remove("best");
  }
}

// `id` is taken when the request is decided on, so a Clear meanwhile makes it stale.
// Boxes are drawn over the pad only for the pad's own drawing, not for an uploaded file.
async function send(id, body, headers = {}, fromPad = false) {
  try {
    const response = await fetch(API_URL, { method: "POST", body, headers });
    const result = await response.json();
    if (id !== latestRequest) return;
    if (response.ok) showResult({ ...result, fromPad });
    else resetResult(result.error || `error ${response.status}`);
  } catch {
    if (id === latestRequest) resetResult("the request failed: is the server running?");
  }
}

function predictCanvas() {
  if (!hasInk) return;
  const id = ++latestRequest;
  pad.toBlob((blob) => send(id, blob, { "Content-Type": "image/png" }, true), "image/png");
}

function schedulePredict() {
  clearTimeout(timer);
  timer = setTimeout(predictCanvas, DEBOUNCE_MS);
}

function clearPad() {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  latestRequest++; // a late answer about the old drawing must not reappear
  clearTimeout(timer);
  resetResult("draw something");
  statusEl.textContent = "";
}

// Pointer position in canvas pixels, whatever size CSS gives the canvas on screen.
function toCanvas(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function dot(point) {
  ctx.beginPath();
  ctx.arc(point.x, point.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function line(from, to) {
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

function startStroke(event) {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  pad.setPointerCapture(event.pointerId);
  ctx.fillStyle = INK;
  last = toCanvas(event);
  dot(last);
  hasInk = true;
  schedulePredict();
}

function continueStroke(event) {
  if (last === null) return;
  // Coalesced events keep fast strokes smooth where the browser merges pointer moves.
  const coalesced = event.getCoalescedEvents?.() ?? [];
  for (const e of coalesced.length ? coalesced : [event]) {
    const point = toCanvas(e);
    line(last, point);
    last = point;
  }
  schedulePredict();
}

function endStroke() {
  if (last === null) return;
  last = null;
  clearTimeout(timer);
  predictCanvas(); // the finished stroke gets its answer at once
}

function uploadFile() {
  const file = uploadEl.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("image", file);
  clearPad();
  confidenceEl.textContent = `reading ${file.name}…`;
  send(++latestRequest, form);
  uploadEl.value = ""; // choosing the same file again should trigger another upload
}

function setUp() {
  ctx.lineWidth = pad.height / 14; // about an MNIST stroke once a digit is scaled to 28x28
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = INK;
  makeBars();
  clearPad();
  pad.addEventListener("pointerdown", startStroke);
  pad.addEventListener("pointermove", continueStroke);
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  document.getElementById("clear").addEventListener("click", clearPad);
  uploadEl.addEventListener("change", uploadFile);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") clearPad();
  });
}

setUp();
