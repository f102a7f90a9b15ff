// The Watches screen: the caller's watches (every watch for an auditor), a form to add one
// from photos, and the alerts with their face thumbnails and where each face was found.
// Uses app.js's globals ($, api, json, blobUrl, el, state); loads whenever the tab is shown.
"use strict";

async function loadWatches() {
  $("watch-error").textContent = "";
  $("watch-form").hidden = !state.me.permissions.includes("watch");
  try {
    const rows = await json("/v1/watches");
    $("watch-rows").replaceChildren(...rows.map(watchRow));
  } catch (e) { $("watch-error").textContent = e.message; }
  loadAlerts();
}

function watchRow(w) {
  const end = w.state === "live" && w.owner === state.me.name && state.me.permissions.includes("watch")
    ? el("button", { type: "button", class: "danger", onclick: () => removeWatch(w) }, "Remove") : "";
  return el("tr", { "data-watch-id": String(w.id) },
    el("td", {}, w.id), el("td", {}, w.state), el("td", {}, w.owner), el("td", {}, w.case_reference),
    el("td", {}, w.purpose), el("td", {}, w.templates), el("td", {}, w.expires_at.slice(0, 10)),
    el("td", {}, w.sources.join(", ") || "all the purpose allows"), el("td", {}, end));
}

async function addWatch(ev) {
  ev.preventDefault();
  $("watch-error").textContent = ""; $("watch-note").textContent = "Adding...";
  const body = new FormData();
  for (const f of $("watch-files").files) body.append("images", f);
  body.append("case_reference", $("watch-case").value); body.append("purpose", $("watch-purpose").value);
  if ($("watch-days").value) body.append("expires_days", $("watch-days").value);
  for (const s of $("watch-sources").value.split(",").map((x) => x.trim()).filter(Boolean)) body.append("sources", s);
  try {
    const w = await json("/v1/watches", { method: "POST", body });
    $("watch-note").textContent = `Watch ${w.id} for case ${w.case_reference} added; it expires ${w.expires_at.slice(0, 10)}.`;
    $("watch-form").reset();
    loadWatches();
  } catch (e) { $("watch-note").textContent = ""; $("watch-error").textContent = e.message; }
}

async function removeWatch(w) {
  if (!confirm(`End watch ${w.id} (case ${w.case_reference})? Its alerts are kept.`)) return;
  try {
    await json(`/v1/watches/${w.id}`, { method: "DELETE" });
    $("watch-note").textContent = `Watch ${w.id} removed.`;
    loadWatches();
  } catch (e) { $("watch-error").textContent = e.message; }
}

async function loadAlerts() {
  try {
    const rows = await json("/v1/alerts");
    if (!rows.length) {
      $("alert-cards").replaceChildren(el("p", {}, "No alerts yet."));
      return;
    }
    $("alert-cards").replaceChildren(...rows.map(alertCard));
  } catch (e) { $("watch-error").textContent = e.message; }
}

function alertCard(a) {
  const thumb = el("img", { alt: a.held ? `face ${a.face_id}` : "face erased", class: "thumb" });
  if (a.thumbnail) blobUrl(a.thumbnail).then((u) => { thumb.src = u; }).catch(() => { thumb.alt = "unavailable"; });
  const places = a.locations.map((p) => el("div", { class: "where" }, `${p.source}: ${p.locator}`,
    el("span", { class: "date" }, ` (${p.ingested_at.slice(0, 10)})`)));
  return el("article", { class: `card alert ${a.band}`, "data-alert-id": String(a.id) },
    thumb,
    el("div", { class: "meta" },
      el("span", { class: `band ${a.band}` }, a.band === "match" ? "match" : "possible: a candidate to check"),
      el("div", {}, `watch ${a.watch_id}, case ${a.case_reference}`),
      el("div", { class: "numbers" }, `distance ${a.distance.toFixed(3)}, ${a.compared.toLocaleString()} comparisons`),
      ...places,
      el("div", { class: "date" }, `alerted ${a.created_at.replace("T", " ").slice(0, 16)}`),
      a.held ? "" : el("div", { class: "warning" }, "this face has since been erased")));
}

document.addEventListener("DOMContentLoaded", () => {
  $("watch-form").addEventListener("submit", addWatch);
  $("alerts-refresh").addEventListener("click", loadAlerts);
  // app.js's showTab un-hides the section: load it each time it is shown.
  new MutationObserver(() => { if (!$("watches").hidden) loadWatches(); })
    .observe($("watches"), { attributes: true, attributeFilter: ["hidden"] });
});
