// The privacy officer's screens: a person's photos for subject access (with the thumbnails
// of what is held), opt-out and person erasure; opt-outs; tombstones with their audited
// lift; registered exports (made, listed, downloaded). Each part shows only for a role
// with its permission (data-perm); the server checks again and audits every call.
"use strict";

const can = (perms) => perms.split(" ").some((p) => state.me.permissions.includes(p));

function loadPrivacy() {
  for (const node of document.querySelectorAll("#privacy [data-perm]")) node.hidden = !can(node.dataset.perm);
  if (can("opt-out")) loadOptOuts();
  if (can("delete")) loadTombstones();
  if (can("export read-audit")) loadExports();
}

function personForm() {
  const files = [...$("pv-photos").files];
  const ref = $("pv-ref").value.trim();
  if (!files.length || files.length > 5) throw new Error("Choose 1 to 5 photos of the person.");
  if (!ref) throw new Error("Give a reference or a reason.");
  return [files, ref];
}

async function personCall(path, field, done) {
  $("pv-error").textContent = ""; $("pv-note").textContent = "Working...";
  try {
    const [files, ref] = personForm();
    const body = new FormData();
    for (const f of files) body.append("images", f);
    body.append(field, ref);
    await done(await json(path, { method: "POST", body }));
  } catch (e) { $("pv-note").textContent = ""; $("pv-error").textContent = e.message; }
}

function showHeld(held) {
  $("pv-note").textContent = held.length
    ? `${held.length} location(s) hold faces of this person (audited as a subject access).`
    : "Nothing held matches these photos.";
  $("pv-held").replaceChildren(...held.map((h) => {
    const thumb = el("img", { alt: `face ${h.face_id}`, class: "thumb" });
    if (h.thumbnail_url) {
      blobUrl(h.thumbnail_url).then((u) => { thumb.src = u; }).catch(() => { thumb.alt = "unavailable"; });
    }
    return el("article", { class: "card held", "data-face-id": String(h.face_id) }, thumb,
      el("div", { class: "meta" },
        el("div", {}, `${h.source}: ${h.locator}`),
        el("div", { class: "date" }, `held since ${h.ingested_at.slice(0, 10)}`),
        el("div", { class: "numbers" }, `face ${h.face_id}, image ${h.image_id}, distance ${h.distance.toFixed(3)}`)));
  }));
}

function showReceipt(what, r) {
  $("pv-held").replaceChildren();
  $("pv-note").textContent = `${what}: receipt ${r.id}, ${r.faces_deleted} faces and ${r.images_deleted} images erased.`;
}

async function loadOptOuts() {
  try {
    const rows = await json("/v1/opt-outs");
    $("pv-optout-rows").replaceChildren(...rows.map((s) => el("tr", {},
      el("td", { class: "mono" }, s.id), el("td", {}, s.created_at), el("td", {}, s.actor),
      el("td", {}, s.reference), el("td", {}, s.templates))));
  } catch (e) { $("pv-error").textContent = e.message; }
}

async function loadTombstones() {
  try {
    const rows = await json("/v1/tombstones");
    $("pv-tomb-rows").replaceChildren(...rows.map((t) => el("tr", { "data-sha": t.sha256 },
      el("td", {}, t.since), el("td", { class: "mono" }, t.receipt_id), el("td", { class: "mono" }, t.sha256),
      el("td", {}, el("button", { type: "button", class: "lift", onclick: () => lift(t) }, "Lift")))));
  } catch (e) { $("pv-error").textContent = e.message; }
}

async function lift(t) {
  const reason = prompt(`Let these erased bytes be ingested again? Give the ruling or request:`);
  if (!reason) return;
  try {
    const r = await json("/v1/tombstone-lifts", { method: "POST", headers: { "Content-Type": "application/json" },
                                                  body: JSON.stringify({ target: t.sha256, reason }) });
    $("pv-note").textContent = `${r.lifted.length} tombstone(s) lifted (audited).`;
    loadTombstones();
  } catch (e) { $("pv-error").textContent = e.message; }
}

async function loadExports() {
  try {
    if (can("export")) {
      const sources = await json("/v1/sources");
      $("pv-export-source").replaceChildren(...sources.map((s) => el("option", { value: s.name }, s.name)));
    }
    const rows = await json("/v1/exports");
    $("pv-export-rows").replaceChildren(...rows.map((x) => {
      const cell = el("td", {});
      if (can("export") && x.path.includes("/exports/")) {
        cell.append(el("button", { type: "button", class: "download", onclick: () => download(x) }, "Download"));
      }
      return el("tr", { "data-export": x.id },
        el("td", { class: "mono" }, x.id), el("td", {}, x.at), el("td", {}, x.actor), el("td", {}, x.kind),
        el("td", {}, x.sources.join(", ")), el("td", {}, x.rows), el("td", {}, x.case), cell);
    }));
  } catch (e) { $("pv-error").textContent = e.message; }
}

async function makeExport(ev) {
  ev.preventDefault();
  $("pv-error").textContent = "";
  try {
    const x = await json("/v1/exports", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ source: $("pv-export-source").value, case_reference: $("pv-export-case").value,
                             purpose: $("pv-export-purpose").value }) });
    $("pv-note").textContent = `Export ${x.id}: ${x.rows} rows (registered; an erasure of the source lists it).`;
    loadExports();
  } catch (e) { $("pv-error").textContent = e.message; }
}

async function download(x) {
  try {
    const link = el("a", { href: await blobUrl(`/v1/exports/${x.id}/csv`), download: `${x.id}.csv` });
    document.body.append(link); link.click(); link.remove();
  } catch (e) { $("pv-error").textContent = e.message; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("pv-access").addEventListener("click", () => personCall("/v1/subject-access", "reference", showHeld));
  $("pv-optout").addEventListener("click", () => {
    if (!confirm("Register an opt-out for this person and erase every face of them now?")) return;
    personCall("/v1/opt-outs", "reference", (r) => { showReceipt("Opted out", r.receipt); loadOptOuts(); });
  });
  $("pv-erase").addEventListener("click", () => {
    if (!confirm("Erase every face of this person? This cannot be undone.")) return;
    personCall("/v1/erasures/person", "reason", (r) => showReceipt("Erased", r));
  });
  $("pv-export-form").addEventListener("submit", makeExport);
});
