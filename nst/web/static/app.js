// The nst page: pick images, run fast or optimised jobs, follow them, download the result.
// The server (nst/web.py) does all checking; this script shows what it answers.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  config: null,
  content: null,          // image description from the server: {id, name, ...}
  styles: [],             // [{image, weight}]
  fastSeq: 0,             // the newest fast request; older answers are ignored
  fastShown: false,       // a fast result is on screen: changing a control re-renders it
  job: null,              // the optimisation being followed
  events: null,           // its EventSource
  rerender: null,         // debounce timer
};

function method() { return document.querySelector("input[name=method]:checked").value; }

function showMessage(text) { $("message").textContent = text; $("message").hidden = false; }
function clearMessage() { $("message").hidden = true; $("message").textContent = ""; }

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `the server answered ${response.status}; reload the page`);
  }
  return body;
}

function thumb(image) { return `/api/images/${encodeURIComponent(image.id)}/thumb.jpg`; }

// ------------------------------------------------------------------ images

async function upload(file) {
  return api("/api/images", {
    method: "POST", body: file,
    headers: {"X-File-Name": encodeURIComponent(file.name), "Content-Type": "application/octet-stream"},
  });
}

function setContent(image) {
  state.content = image;
  $("content-thumb").src = thumb(image);
  $("content-thumb").alt = image.name;
  $("content-thumb").hidden = false;
  markChosen();
  changed();
}

function addStyle(image) {
  if (state.styles.some((s) => s.image.id === image.id)) return;
  if (state.styles.length >= state.config.max_styles) {
    showMessage(`use at most ${state.config.max_styles} styles; remove one first`);
    return;
  }
  state.styles.push({image, weight: 1});
  drawStyles();
  changed();
}

function drawStyles() {
  const list = $("style-list");
  list.textContent = "";
  state.styles.forEach((style, index) => {
    const item = document.createElement("li");
    const img = document.createElement("img");
    img.src = thumb(style.image); img.alt = "";
    const name = document.createElement("span");
    name.className = "name"; name.textContent = style.image.name;
    const weight = document.createElement("input");
    weight.type = "number"; weight.min = "0"; weight.step = "0.5"; weight.value = style.weight;
    weight.title = "weight of this style in the mix";
    weight.className = "style-weight";
    weight.addEventListener("input", () => { style.weight = parseFloat(weight.value) || 0; changed(); });
    const remove = document.createElement("button");
    remove.type = "button"; remove.textContent = "✕"; remove.title = "remove this style";
    remove.addEventListener("click", () => { state.styles.splice(index, 1); drawStyles(); changed(); });
    item.append(img, name, weight, remove);
    list.append(item);
  });
  markChosen();
}

function markChosen() {
  document.querySelectorAll("#content-samples button").forEach((b) =>
    b.classList.toggle("chosen", !!state.content && state.content.id === b.dataset.id));
  document.querySelectorAll("#style-samples button").forEach((b) =>
    b.classList.toggle("chosen", state.styles.some((s) => s.image.id === b.dataset.id)));
}

async function takeFiles(files, forContent) {
  clearMessage();
  for (const file of files) {
    try {
      const image = await upload(file);
      if (forContent) { setContent(image); break; } else { addStyle(image); }
    } catch (error) {
      showMessage(error.message);
    }
  }
}

function dropZone(zone, input, forContent) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault(); zone.classList.remove("over");
    takeFiles(Array.from(e.dataTransfer.files), forContent);
  });
  input.addEventListener("change", () => { takeFiles(Array.from(input.files), forContent); input.value = ""; });
  zone.addEventListener("keydown", (e) => {  // the zone is focusable: Enter or Space opens the file chooser
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
}

function drawSamples() {
  for (const [box, pick] of [[$("content-samples"), setContent], [$("style-samples"), addStyle]]) {
    for (const image of state.config.samples) {
      const button = document.createElement("button");
      button.type = "button"; button.dataset.id = image.id; button.title = image.name;
      const img = document.createElement("img");
      img.src = thumb(image); img.alt = image.name;
      button.append(img);
      button.addEventListener("click", () => { clearMessage(); pick(image); });
      box.append(button);
    }
  }
}

// ------------------------------------------------------------------ jobs

function request() {
  const body = {
    content: state.content && state.content.id,
    styles: state.styles.map((s) => ({id: s.image.id, weight: s.weight})),
    strength: parseFloat($("strength").value),
    size: parseInt($("size").value, 10),
    preserve_colors: $("preserve-colors").checked,
    precision: $("precision").value,
  };
  const iterations = $("iterations").value.trim();
  if (method() === "optimise" && iterations) body.iterations = parseInt(iterations, 10);
  if (method() === "fast") body.slot = "page";
  return body;
}

function check() {
  if (!state.content) return "choose a photo first (drop one, or click a sample)";
  if (!state.styles.length) return "choose at least one style (drop one, or click a sample)";
  return null;
}

function showResult(job, src, caption) {
  const img = $("result");
  img.src = src;
  img.hidden = false;
  img.dataset.job = job.id;
  img.dataset.state = job.state;
  img.dataset.method = job.method;
  img.dataset.previews = job.previews;
  $("result-caption").textContent = caption;
}

function showDownloads(job) {
  const base = `/api/jobs/${encodeURIComponent(job.id)}`;
  $("download-png").href = `${base}/result.png?download=1`;
  $("download-json").href = `${base}/record.json?download=1`;
  $("downloads").hidden = false;
}

async function runFast() {
  const problem = check();
  if (problem) { showMessage(problem); return; }
  clearMessage();
  const seq = ++state.fastSeq;
  $("result-caption").textContent = "Stylising…";
  let job;
  try {
    job = await api("/api/fast", {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(request())});
  } catch (error) {
    if (seq === state.fastSeq) showMessage(error.message);
    return;
  }
  if (seq !== state.fastSeq || job.state === "cancelled") return;  // a newer request is on its way
  if (job.state !== "done") { showMessage(job.message || "the job failed"); return; }
  const seconds = job.progress.elapsed_s;
  showResult(job, `/api/jobs/${encodeURIComponent(job.id)}/result.png`,
             `Fast: ${job.size[0]}×${job.size[1]} in ${seconds.toFixed(2)} s. Move the strength slider to re-render.` +
             (job.message ? ` Note: ${job.message}.` : ""));
  showDownloads(job);
  state.fastShown = true;
}

async function runOptimise() {
  const problem = check();
  if (problem) { showMessage(problem); return; }
  clearMessage();
  let job;
  try {
    job = await api("/api/optimise", {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(request())});
  } catch (error) {
    showMessage(error.message);
    return;
  }
  state.fastShown = false;
  follow(job);
}

function follow(job) {
  if (state.events) state.events.close();
  state.job = job;
  $("stop").disabled = false;
  $("downloads").hidden = true;
  $("progress-box").hidden = false;
  $("progress").value = 0;
  $("progress-text").textContent = "Waiting for the engine…";
  let previews = 0;
  const events = new EventSource(`/api/jobs/${encodeURIComponent(job.id)}/events`);
  state.events = events;
  events.onmessage = (event) => {
    const now = JSON.parse(event.data);
    drawProgress(now);
    if (now.previews > previews && !["done", "stopped"].includes(now.state)) {
      previews = now.previews;
      showResult(now, `/api/jobs/${encodeURIComponent(now.id)}/preview.png?n=${previews}`,
                 `Live preview ${previews} (the image being optimised)`);
    }
    if (["done", "stopped", "failed", "cancelled"].includes(now.state)) {
      events.close();
      finished(now);
    }
  };
}

function clock(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

function drawProgress(job) {
  const p = job.progress || {};
  if (job.state === "queued") {
    $("progress-text").textContent = `Queued: number ${p.queue_position || "?"} in line (one optimisation runs at a time).`;
    return;
  }
  if (p.total_steps === undefined) return;
  $("progress").max = p.total_steps;
  $("progress").value = p.step;
  const costs = p.costs || {};
  const fmt = (x) => (x === undefined ? "?" : Number(x).toPrecision(3));
  const eta = p.eta_s === null || p.eta_s === undefined ? "estimating" : `${clock(p.eta_s)} left`;
  $("progress-text").textContent =
    `Step ${p.step}/${p.total_steps} · scale ${p.scale}/${p.scales} (${p.width}×${p.height}) · ` +
    `${clock(p.elapsed_s)} elapsed, ${eta} · cost ${fmt(costs.total)} ` +
    `(content ${fmt(costs.content)}, style ${fmt(costs.style)})`;
}

function finished(job) {
  $("stop").disabled = true;
  state.job = null;
  if (job.state === "failed" || job.state === "cancelled") {
    showMessage(job.message || `the job was ${job.state}`);
    $("progress-text").textContent = job.message;
    return;
  }
  const what = job.state === "stopped" ? "Stopped; this is the best image so far" : "Done";
  const p = job.progress || {};
  if (p.total_steps !== undefined) {
    $("progress-text").textContent = `${job.state === "stopped" ? "Stopped" : "Finished"} at step ${p.step}/` +
      `${p.total_steps} after ${clock(p.elapsed_s)}.`;
  }
  showResult(job, `/api/jobs/${encodeURIComponent(job.id)}/result.png`,
             `${what}: ${job.size[0]}×${job.size[1]}, ${job.progress.step || 0} steps.` +
             (job.state === "done" && job.message ? ` ${job.message}` : ""));
  showDownloads(job);
}

async function stop() {
  if (!state.job) return;
  $("stop").disabled = true;
  $("progress-text").textContent += " · stopping…";
  try {
    await api(`/api/jobs/${encodeURIComponent(state.job.id)}/stop`, {method: "POST"});
  } catch (error) {
    showMessage(error.message);
  }
}

// A control changed: in fast mode with a result on screen, render again (debounced).
function changed() {
  $("strength-value").textContent = Number($("strength").value).toFixed(2);
  if (method() !== "fast" || !state.fastShown) return;
  clearTimeout(state.rerender);
  state.rerender = setTimeout(runFast, 150);
}

function methodChanged() {
  document.body.classList.toggle("fast", method() === "fast");
  $("run").textContent = method() === "fast" ? "Stylise" : "Start";
  $("strength-help").textContent = method() === "fast"
    ? "How much of the style's statistics the photo takes (0: the photo as the decoder sees it)."
    : "The style weight, as a fraction of the default (0: the photo reconstructed, 1: a painting).";
}

// The number format of the convolutions (issue 15): "auto" says what it picks on the server's CPU.
function drawPrecisions() {
  const names = {auto: `auto (${state.config.auto_precision} on this server)`, fp32: "fp32", bf16: "bf16"};
  for (const value of state.config.precisions) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = names[value] || value;
    $("precision").appendChild(option);
  }
  $("precision").value = state.config.default_precision;
  $("precision-help").textContent = "bf16 is faster only on CPUs with bfloat16 units; elsewhere it runs in fp32";
}

async function start() {
  try {
    state.config = await api("/api/config");
  } catch (error) {
    showMessage(error.message);
    return;
  }
  $("strength").value = state.config.default_strength;
  $("size").value = state.config.default_size;
  $("size").max = state.config.max_size;
  drawPrecisions();
  drawSamples();
  dropZone($("content-drop"), $("content-file"), true);
  dropZone($("style-drop"), $("style-file"), false);
  for (const id of ["strength", "size", "preserve-colors"]) $(id).addEventListener("input", changed);
  $("precision").addEventListener("change", changed);
  document.querySelectorAll("input[name=method]").forEach((r) => r.addEventListener("change", methodChanged));
  $("run").addEventListener("click", () => (method() === "fast" ? runFast() : runOptimise()));
  $("stop").addEventListener("click", stop);
  methodChanged();
  changed();
  document.body.dataset.ready = "1";
}

start();
