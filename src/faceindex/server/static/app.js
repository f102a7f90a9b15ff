// faceindex web page: plain DOM, no framework, no build step. The token stays in
// sessionStorage and travels only in the Authorization header; images are fetched with it
// and shown through blob: URLs.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("faceindex-token"), me: null, file: null,
                probeUrl: null, faces: [], chosen: -1, crop: null };

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, { Authorization: `Bearer ${state.token}` });
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try { const p = await res.json(); detail = `${p.title}: ${p.detail}`; } catch (e) { /* not JSON */ }
    const err = new Error(detail); err.status = res.status; throw err;
  }
  return res;
}
const json = async (path, options) => (await api(path, options)).json();
const blobUrl = async (path) => URL.createObjectURL(await (await api(path)).blob());

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// -- sign in --------------------------------------------------------------------------------
async function signIn(token) {
  state.token = token;
  try {
    state.me = await json("/v1/me");
  } catch (e) {
    state.token = null; sessionStorage.removeItem("faceindex-token");
    $("signin-error").textContent = e.message; return;
  }
  sessionStorage.setItem("faceindex-token", token);
  $("signin").hidden = true; $("tabs").hidden = false;
  $("who").textContent = `${state.me.name} (${state.me.role}) `;
  $("who").append(el("button", { type: "button", onclick: signOut }, "Sign out"));
  let first = null;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.hidden = !b.dataset.perm.split(" ").some((p) => state.me.permissions.includes(p));
    if (!b.hidden && !first) first = b.dataset.tab;
  }
  if (first) showTab(first);
}
function signOut() { sessionStorage.removeItem("faceindex-token"); location.reload(); }

function showTab(name) {
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  if (name === "audit") loadAudit();
  if (name === "admin") loadSources();
  if (name === "receipts") loadReceipts();
  if (name === "privacy") loadPrivacy();
}

// -- probe: pick a photo, see its faces, choose one ------------------------------------------
async function pickProbe(file) {
  state.file = file; state.faces = []; state.chosen = -1;
  $("results").replaceChildren(); $("compare").hidden = true; $("search-error").textContent = "";
  if (state.probeUrl) URL.revokeObjectURL(state.probeUrl);
  state.probeUrl = URL.createObjectURL(file);
  $("probe-img").src = state.probeUrl; $("probe-wrap").hidden = false;
  $("probe-hint").textContent = "Finding faces...";
  const body = new FormData(); body.append("image", file);
  try {
    const found = await json("/v1/probe/faces", { method: "POST", body });
    state.faces = found.faces; state.size = [found.width, found.height];
  } catch (e) { $("probe-hint").textContent = e.message; return; }
  drawBoxes($("probe-stage"), state.size, state.faces.map((f) => f.box), choose);
  if (state.faces.length === 1) choose(0);
  $("probe-hint").textContent = state.faces.length
    ? `${state.faces.length} face(s) found; ${state.faces.length > 1 ? "click the one to search for." : "it is selected."}`
    : "No face found in this photo.";
}

function drawBoxes(stage, size, boxes, onPick, selected = -1) {
  for (const old of stage.querySelectorAll(".box")) old.remove();
  const [w, h] = size;
  boxes.forEach((b, i) => {
    const box = el("button", { type: "button", class: "box" + (i === selected ? " chosen" : ""),
      title: `face ${i + 1}`, "data-face": String(i) });
    box.style.left = `${(100 * b[0]) / w}%`; box.style.top = `${(100 * b[1]) / h}%`;
    box.style.width = `${(100 * (b[2] - b[0])) / w}%`; box.style.height = `${(100 * (b[3] - b[1])) / h}%`;
    if (onPick) box.addEventListener("click", () => onPick(i));
    stage.append(box);
  });
}

function choose(i) {
  state.chosen = i;
  drawBoxes($("probe-stage"), state.size, state.faces.map((f) => f.box), choose, i);
  $("search-btn").disabled = false;
}

// The chosen face, with a margin, is the only part of the photo sent to the search.
async function cropChosen() {
  const img = $("probe-img"); const [l, t, r, b] = state.faces[state.chosen].box;
  const mx = (r - l) * 0.6, my = (b - t) * 0.6;
  const x0 = Math.max(0, l - mx), y0 = Math.max(0, t - my);
  const x1 = Math.min(img.naturalWidth, r + mx), y1 = Math.min(img.naturalHeight, b + my);
  const canvas = el("canvas"); canvas.width = x1 - x0; canvas.height = y1 - y0;
  canvas.getContext("2d").drawImage(img, x0, y0, x1 - x0, y1 - y0, 0, 0, x1 - x0, y1 - y0);
  state.crop = [x0, y0];
  return new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.95));
}

// -- search and results ----------------------------------------------------------------------
async function runSearch(ev) {
  ev.preventDefault();
  if (state.chosen < 0) return;
  $("search-error").textContent = ""; $("results").replaceChildren(el("p", {}, "Searching..."));
  const body = new FormData();
  body.append("image", await cropChosen(), "probe.jpg");
  body.append("case_reference", $("case").value); body.append("purpose", $("purpose").value);
  body.append("top_k", $("topk").value || "10"); body.append("largest", "true");
  try {
    showResults(await json("/v1/searches", { method: "POST", body }));
  } catch (e) { $("results").replaceChildren(); $("search-error").textContent = e.message; }
}

const BAND_TEXT = { match: "match", possible: "possible: a candidate to check", "no-match": "no match" };

function showResults(answer) {
  const list = el("div", { class: "cards" });
  const notes = [];
  for (const f of answer.faces) {
    notes.push(el("p", { class: "gallery" }, `${f.gallery_size.toLocaleString()} faces searched; ` +
      `"match" only where fewer than 1 search in ${Math.round(1 / f.match_bound)} of a gallery this size ` +
      `would show a stranger this close. Probe face quality ${f.probe.quality.toFixed(2)}.`));
    for (const w of f.probe.warnings) notes.push(el("p", { class: "warning" }, `Warning: ${w}`));
  }
  const matches = answer.faces.flatMap((f) => f.matches);
  if (!matches.length) list.append(el("p", {}, "No faces in the gallery are close to this one."));
  for (const m of matches) {
    // One card per photo group: every location of every copy of the photo, not the first.
    const places = m.provenance.length ? m.provenance : [{ source: "-", locator: "-", ingested_at: "" }];
    const where = el("ul", { class: "locations" }, ...places.map((p) =>
      el("li", {}, `${p.source}: ${p.locator}`, el("span", { class: "date" }, ` ${p.ingested_at.slice(0, 10)}`))));
    const thumb = el("img", { alt: `face ${m.face_id}`, class: "thumb" });
    blobUrl(m.thumbnail_url).then((u) => { thumb.src = u; }).catch(() => { thumb.alt = "unavailable"; });
    const card = el("article", { class: `card ${m.decision}`, "data-face-id": String(m.face_id) },
      thumb,
      el("div", { class: "meta" },
        el("span", { class: `band ${m.decision}` }, BAND_TEXT[m.decision] || m.decision),
        el("div", { class: "chance" }, capitalise(m.stranger_chance_words) + "."),
        el("div", { class: "numbers" }, `distance ${m.distance.toFixed(3)}, quality ${m.quality.toFixed(2)}`),
        places.length > 1 ? el("div", { class: "copies" }, `${places.length} locations of this photo`) : "",
        where));
    if (m.original_url) {
      card.append(el("button", { type: "button", class: "open", onclick: () => compare(m) }, "Compare with probe"));
    }
    if (typeof reviewCard === "function") reviewCard(card, m, answer); // static/review.js
    list.append(card);
  }
  $("results").replaceChildren(el("p", { class: "case" }, `Search ${answer.search_id} for case ${answer.case_reference}`), ...notes, list);
}

const capitalise = (text) => text.charAt(0).toUpperCase() + text.slice(1);

async function compare(m) {
  $("compare").hidden = false;
  $("cmp-probe").src = state.probeUrl;
  const probeStage = $("cmp-probe").parentElement;
  drawBoxes(probeStage, state.size, [state.faces[state.chosen].box], null, 0);
  const where = m.provenance[0];
  $("cmp-caption").textContent = `${where.source}: ${where.locator} (${m.decision}; ${m.stranger_chance_words})`;
  try {
    const img = $("cmp-match"); img.src = await blobUrl(m.original_url);
    await img.decode();
    drawBoxes($("cmp-match-stage"), [img.naturalWidth, img.naturalHeight], [m.box], null, 0);
  } catch (e) { $("cmp-caption").textContent = e.message; }
  $("compare").scrollIntoView({ behavior: "smooth" });
}

// -- admin and receipts views (the auditor's view: audit.js; the privacy officer's: privacy.js)
async function loadSources() {
  $("admin-error").textContent = "";
  try {
    const rows = await json("/v1/sources");
    $("source-rows").replaceChildren(...rows.map((s) => el("tr", {},
      el("td", {}, s.name), el("td", {}, s.owner), el("td", {}, s.legal_basis),
      el("td", {}, s.retention_days), el("td", {}, s.created_at.slice(0, 10)),
      el("td", {},
        el("button", { type: "button", onclick: () => ingest(s.name) }, "Ingest"), " ",
        el("button", { type: "button", class: "danger", onclick: () => eraseSource(s.name) }, "Delete")))));
  } catch (e) { $("admin-error").textContent = e.message; }
}

async function ingest(name) {
  try {
    let job = await json("/v1/ingest-jobs", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ source: name }) });
    while (job.status === "queued" || job.status === "running") {
      $("admin-note").textContent = `Ingesting ${name}: ${job.done}/${job.total} images, ${job.faces} faces`;
      await new Promise((ok) => setTimeout(ok, 1000));
      job = await json(`/v1/ingest-jobs/${job.id}`);
    }
    $("admin-note").textContent = `Ingest of ${name} ${job.status}: ${job.done} images, ${job.faces} faces, ${job.failed} failed`;
  } catch (e) { $("admin-error").textContent = e.message; }
}

async function eraseSource(name) {
  const reason = prompt(`Delete source "${name}" and every face from it? Give the reason:`);
  if (!reason) return;
  try {
    const r = await json(`/v1/sources/${encodeURIComponent(name)}?reason=${encodeURIComponent(reason)}`,
                         { method: "DELETE" });
    $("admin-note").textContent = `Deleted: receipt ${r.id}, ${r.faces_deleted} faces, ${r.images_deleted} images.`;
    loadSources();
  } catch (e) { $("admin-error").textContent = e.message; }
}

async function loadReceipts() {
  try {
    const rows = await json("/v1/receipts");
    $("receipt-rows").replaceChildren(...rows.map((r) => el("tr", {},
      el("td", { class: "mono" }, r.id), el("td", {}, r.at), el("td", {}, r.kind), el("td", {}, r.target),
      el("td", {}, r.faces_deleted), el("td", {}, r.images_deleted), el("td", {}, r.actor))));
  } catch (e) { $("receipts-error").textContent = e.message; }
}

// -- wiring ----------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("probe-file").addEventListener("change", (ev) => ev.target.files[0] && pickProbe(ev.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault(); drop.classList.remove("over");
    if (ev.dataTransfer.files[0]) pickProbe(ev.dataTransfer.files[0]);
  });
  $("search-form").addEventListener("submit", runSearch);
  $("compare-close").addEventListener("click", () => { $("compare").hidden = true; });
  if (state.token) signIn(state.token);
});
