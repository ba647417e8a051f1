// Drawing pad -> POST /api/predict -> the number, a box per digit, bars. Plain JS, no build step.
"use strict";

const API_URL = "/api/predict";
const OWN_URL = "/api/own-digits";
const TEACH_URL = "/api/teach";
const MODEL_URL = "/api/model";
const POLL_MS = 1000; // how often the page asks how a teaching run is going
const THUMBNAILS_PER_DIGIT = 40; // more would make a long page; the count says how many
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
const notesEl = document.getElementById("notes");
const uploadEl = document.getElementById("upload");
const correctEl = document.getElementById("correct");
const rightNumberEl = document.getElementById("right-number");
const ownEl = document.getElementById("own");
const ownSummaryEl = document.getElementById("own-summary");
const ownGroupsEl = document.getElementById("own-groups");
const teachEl = document.getElementById("teach");
const teachStatusEl = document.getElementById("teach-status");
const teachNoteEl = document.getElementById("teach-note");
const servedEl = document.getElementById("served");
const useOriginalEl = document.getElementById("use-original");
const useTaughtEl = document.getElementById("use-taught");

let last = null; // the previous point of the stroke being drawn, or null
let hasInk = false;
let timer = 0;
let latestRequest = 0; // responses to older requests are dropped
let shown = null; // the last answer, and which of its digits the bars show
let selected = 0;
let picture = null; // the picture of the last reading, sent again to save a correction
let teaching = false; // whether this server lets the page save and teach

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
    showNotes(reading.notes);
    statusEl.textContent = `${reading.elapsed_ms} ms on the server`;
    offerCorrection();
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
  showNotes(result.notes);
  statusEl.textContent = `${result.elapsed_ms} ms on the server`;
  offerCorrection();
}

// What the reader left out or read in doubt (a mark that may be a point, a piece judged not a
// digit): a number shown without them would look surer than it is.
function showNotes(notes) {
  notesEl.replaceChildren(
    ...notes.map((note) => {
      const item = document.createElement("li");
      item.textContent = note;
      return item;
    }),
  );
}

function resetResult(message) {
  correctEl.hidden = true;
  showNotes([]);
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
  pad.toBlob((blob) => {
    picture = { blob, name: "drawing.png" };
    send(id, blob, { "Content-Type": "image/png" }, true);
  }, "image/png");
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
  picture = { blob: file, name: file.name };
  confidenceEl.textContent = `reading ${file.name}…`;
  send(++latestRequest, form);
  uploadEl.value = ""; // choosing the same file again should trigger another upload
}

// --- Your digits: correct a reading, see what is saved, teach -----------------------------------

// One JSON call; the answer's JSON, or an Error with the server's one-line message.
async function call(url, options = {}) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `error ${response.status}`);
  return body;
}

function sendJson(method, url, body) {
  return call(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function offerCorrection() {
  if (!teaching || !picture) return;
  rightNumberEl.value = "";
  correctEl.hidden = false;
}

// The server reads the same picture again and saves the digits it finds: never our pixels.
async function saveCorrection(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("image", picture.blob, picture.name);
  form.append("number", rightNumberEl.value.trim());
  try {
    const listing = await call(OWN_URL, { method: "POST", body: form });
    const labels = listing.saved.map((digit) => digit.label).join(", ");
    const count = listing.saved.length;
    statusEl.textContent = `saved ${count} ${count === 1 ? "digit" : "digits"} as ${labels}`;
    showOwnDigits(listing);
  } catch (error) {
    statusEl.textContent = error.message;
  }
}

function labelChooser(saved) {
  const chooser = document.createElement("select");
  chooser.title = "its right digit";
  for (let digit = 0; digit < NUM_CLASSES; digit++) chooser.add(new Option(String(digit), String(digit)));
  chooser.value = String(saved.label);
  chooser.addEventListener("change", () => changeOwn("PATCH", saved.name, { label: chooser.value }));
  return chooser;
}

function thumbnail(saved) {
  const item = document.createElement("li");
  const image = document.createElement("img");
  image.src = `${OWN_URL}/${encodeURIComponent(saved.name)}`;
  image.alt = `a saved ${saved.label}`;
  image.width = image.height = 42;
  image.loading = "lazy";
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete";
  remove.textContent = "×";
  remove.title = "delete it";
  remove.addEventListener("click", () => changeOwn("DELETE", saved.name));
  item.dataset.name = saved.name;
  item.append(image, labelChooser(saved), remove);
  return item;
}

function showOwnDigits(listing) {
  const { total, counts, pictures } = listing;
  ownSummaryEl.textContent = total
    ? `${total} saved in ${listing.folder} (at most ${listing.max.toLocaleString()})`
    : "Correct a reading to save its digits here.";
  const groups = [];
  for (let digit = 0; digit < NUM_CLASSES; digit++) {
    if (!counts[digit]) continue;
    const group = document.createElement("div");
    group.className = "own-group";
    const heading = document.createElement("h3");
    heading.textContent = `${digit} · ${counts[digit]}`;
    const list = document.createElement("ul");
    const mine = pictures.filter((p) => p.label === digit);
    list.append(...mine.slice(0, THUMBNAILS_PER_DIGIT).map(thumbnail));
    group.append(heading, list);
    groups.push(group);
  }
  ownGroupsEl.replaceChildren(...groups);
}

async function loadOwnDigits() {
  try {
    showOwnDigits(await call(OWN_URL));
  } catch (error) {
    ownSummaryEl.textContent = error.message;
  }
}

async function changeOwn(method, name, body) {
  try {
    const url = `${OWN_URL}/${encodeURIComponent(name)}`;
    showOwnDigits(await (body ? sendJson(method, url, body) : call(url, { method })));
  } catch (error) {
    ownSummaryEl.textContent = error.message;
  }
}

function showServed(model) {
  const which = model.served === "taught" ? "the model taught your digits" : "the original model";
  servedEl.textContent = `${model.model} (${which})`;
  useOriginalEl.hidden = !teaching || model.served === "original";
  useTaughtEl.hidden = !teaching || model.served === "taught" || !model.taught;
}

async function showModel() {
  try {
    const model = await call(MODEL_URL);
    teaching = model.teaching;
    ownEl.hidden = false;
    showServed(model);
    ownEl.classList.toggle("off", !teaching);
    if (teaching) {
      loadOwnDigits();
      pollTeaching(); // a run started before this page was loaded shows too
    } else ownSummaryEl.textContent = model.teaching_off;
  } catch {
    // No model line: the reading part of the page still works.
  }
}

async function useModel(which) {
  try {
    showServed(await sendJson("POST", MODEL_URL, { use: which }));
    predictCanvas(); // the drawing, read again by the model now served
  } catch (error) {
    teachNoteEl.textContent = error.message;
  }
}

// An accuracy in [0, 1] as "97.5%"; null (not measured: too few of your digits) as "–".
const percent = (fraction) => (fraction == null ? "–" : `${(100 * fraction).toFixed(1)}%`);

// "your digits 40.0% -> 100.0%, MNIST 99.5% -> 99.4%", from the run's before and after.
function figures(progress) {
  const { before, after } = progress;
  if (!before) return "";
  const own = `your ${before.own_count} digits ${percent(before.own)}`;
  const mnist = `MNIST ${percent(before.mnist)}`;
  if (!after) return `before: ${own}, ${mnist}`;
  return `your digits ${percent(before.own)} → ${percent(after.own)}, MNIST ${percent(before.mnist)} → ${percent(after.mnist)}`;
}

function describeRun(run) {
  const progress = run.progress || { stage: "starting" };
  if (run.state === "failed") return `teaching failed: ${run.error}`;
  if (run.state === "done") return `taught: ${figures(progress)}`;
  if (progress.stage === "done") return "teaching: done, loading the new model…";
  let text = `teaching: ${progress.stage}`;
  if (progress.stage === "training") text += `, epoch ${progress.epoch} of ${progress.epochs}`;
  if (progress.seconds_left != null) text += `, about ${Math.ceil(progress.seconds_left)} s left`;
  const known = figures(progress);
  return known ? `${text} (${known})` : text;
}

function showRun(run) {
  const running = run.state === "running";
  const justTaught = run.state === "done" && teachEl.classList.contains("running");
  teachEl.classList.toggle("running", running);
  teachEl.textContent = running ? "Teaching…" : "Teach";
  teachStatusEl.textContent = run.state === "idle" ? "" : describeRun(run);
  showServed(run.model);
  if (justTaught) predictCanvas(); // the drawing, read again by the new model
  return running;
}

// Ask how the run goes every POLL_MS while one runs; once at start-up, in case one does.
async function pollTeaching() {
  try {
    if (showRun(await call(TEACH_URL))) setTimeout(pollTeaching, POLL_MS);
  } catch {
    // Teaching is off here, or the server is gone: nothing to show.
  }
}

async function startTeaching() {
  teachNoteEl.textContent = "";
  try {
    showRun(await call(TEACH_URL, { method: "POST" }));
    setTimeout(pollTeaching, POLL_MS);
  } catch (error) {
    teachNoteEl.textContent = error.message; // a run under way says so, and stays said
  }
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
  correctEl.addEventListener("submit", saveCorrection);
  teachEl.addEventListener("click", startTeaching);
  useOriginalEl.addEventListener("click", () => useModel("original"));
  useTaughtEl.addEventListener("click", () => useModel("taught"));
  showModel();
  uploadEl.addEventListener("change", uploadFile);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") clearPad();
  });
}

setUp();
