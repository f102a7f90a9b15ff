// faceindex web page: the Persons screen. A grid of person cards (representative face,
// label, faces, sources); open one to see its faces and where they were found, name it,
// merge another person into it, split faces off, or take a face out. Uses app.js's globals
// ($, api, json, blobUrl, el, state); every change goes through /v1/persons (audited).
"use strict";

const persons = { open: null };
const canManage = () => state.me && state.me.permissions.includes("manage-persons");
const personName = (p) => p.label || `Person ${p.id}`;
const jsonBody = (method, body) => ({ method, headers: { "Content-Type": "application/json" },
                                      body: JSON.stringify(body) });

function personThumb(url, alt) {
  const img = el("img", { alt, class: "thumb" });
  if (url) blobUrl(url).then((u) => { img.src = u; }).catch(() => { img.alt = `${alt} (unavailable)`; });
  return img;
}

async function loadPersons() {
  $("persons-error").textContent = "";
  $("persons-build").hidden = !canManage();
  try {
    const answer = await json("/v1/persons");
    $("persons-status").textContent = `${answer.persons.length} persons`;
    $("person-grid").replaceChildren(...answer.persons.map((p) => el("div", { class: "card person", "data-person": p.id },
      personThumb(p.representative_url, personName(p)),
      el("div", {},
        el("strong", {}, personName(p)),
        el("div", { class: "meta" }, `${p.face_count} face${p.face_count === 1 ? "" : "s"}`),
        el("div", { class: "meta" }, p.sources.join(", ")),
        el("button", { type: "button", class: "open", onclick: () => openPerson(p.id) }, "Open")))));
    if (persons.open && !answer.persons.some((p) => p.id === persons.open)) closePerson();
  } catch (e) { $("persons-error").textContent = e.message; }
}

async function buildPersons() {
  $("persons-error").textContent = "";
  $("persons-status").textContent = "Building persons...";
  try {
    const r = await json("/v1/persons/build", jsonBody("POST", { rebuild: false }));
    await loadPersons();  // writes the person count into the status line: the report goes after it
    $("persons-status").textContent = `${r.faces_placed} faces placed: ${r.persons_created} new persons, ${r.persons_joined} grew`;
  } catch (e) { $("persons-error").textContent = e.message; }
}

function closePerson() { persons.open = null; $("person-detail").hidden = true; }

async function openPerson(id) {
  $("persons-error").textContent = "";
  try { showPerson(await json(`/v1/persons/${id}`)); } catch (e) { $("persons-error").textContent = e.message; }
}

function showPerson(p) {
  persons.open = p.id;
  $("person-title").textContent = `${personName(p)}: ${p.face_count} faces`;
  $("person-label").value = p.label;
  for (const id of ["person-label", "person-save", "person-merge-id", "person-merge", "person-split"]) $(id).disabled = !canManage();
  $("person-faces").replaceChildren(...p.faces.map((f) => el("div", { class: "card", "data-face": f.face_id },
    personThumb(f.thumbnail_url, `face ${f.face_id}`),
    el("div", {},
      el("label", {}, el("input", { type: "checkbox", class: "pick", value: f.face_id }), ` face ${f.face_id}`,
         f.face_id === p.representative ? " (shown)" : ""),
      el("ul", { class: "where" }, ...f.provenance.map((l) => el("li", {}, `${l.source}: ${l.locator}`))),
      canManage() ? el("button", { type: "button", class: "remove", onclick: () => removeFace(p.id, f.face_id) }, "Not this person") : ""))));
  $("person-detail").hidden = false;
}

async function change(request) {
  $("persons-error").textContent = "";
  try { const r = await request(); await loadPersons(); return r; } catch (e) { $("persons-error").textContent = e.message; return null; }
}

async function saveLabel() {
  const p = await change(() => json(`/v1/persons/${persons.open}/label`, jsonBody("PUT", { label: $("person-label").value })));
  if (p) showPerson(p);
}

async function mergeInto() {
  const other = parseInt($("person-merge-id").value, 10);
  if (!other) { $("persons-error").textContent = "Give the number of the person to merge into this one."; return; }
  const p = await change(() => json(`/v1/persons/${persons.open}/merges`, jsonBody("POST", { other })));
  if (p) { $("person-merge-id").value = ""; showPerson(p); }
}

async function splitPicked() {
  const picked = [...document.querySelectorAll("#person-faces input.pick:checked")].map((c) => parseInt(c.value, 10));
  if (!picked.length) { $("persons-error").textContent = "Tick the faces to move to a new person."; return; }
  const r = await change(() => json(`/v1/persons/${persons.open}/splits`, jsonBody("POST", { face_ids: picked })));
  if (r) { showPerson(r.persons[0]); $("persons-status").textContent = `Split off as person ${r.persons[1].id}`; }
}

async function removeFace(person, face) {
  const r = await change(() => json(`/v1/persons/${person}/faces/${face}`, { method: "DELETE" }));
  if (!r) return;
  const rest = r.persons.find((p) => p.id === person);
  if (rest) showPerson(rest); else closePerson();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll('#tabs button[data-tab="persons"]')) b.addEventListener("click", loadPersons);
  $("persons-build").addEventListener("click", buildPersons);
  $("person-save").addEventListener("click", saveLabel);
  $("person-merge").addEventListener("click", mergeInto);
  $("person-split").addEventListener("click", splitPicked);
  $("person-close").addEventListener("click", closePerson);
});
