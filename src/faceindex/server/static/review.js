// Review decisions on result cards, and the Case screen: a case's searches, verifications,
// candidates and their decisions. Uses app.js's globals ($, api, json, el, showTab).
"use strict";

const REVIEW_DECISIONS = ["confirmed", "rejected", "inconclusive"];

function decidedText(r) {
  const note = r.note ? `: ${r.note}` : "";
  return `Reviewed ${r.decision} by ${r.reviewer} (${r.at.slice(0, 16).replace("T", " ")})${note}`;
}

// Called by showResults for each result card (app.js).
function reviewCard(card, m, answer) {
  if (!answer.search_id) return;
  const decided = el("div", { class: "decided" + (m.review ? ` ${m.review.decision}` : "") },
    m.review ? decidedText(m.review) : "Not reviewed");
  const note = el("input", { type: "text", maxlength: "2000", placeholder: "note (optional)",
                             "aria-label": `note on face ${m.face_id}` });
  const error = el("div", { class: "error", role: "alert" });
  const box = el("div", { class: "review", "data-review-face": String(m.face_id) }, decided, note);
  for (const decision of REVIEW_DECISIONS) {
    box.append(el("button", { type: "button", "data-decision": decision,
      onclick: () => decide(answer.search_id, m.face_id, decision, note, decided, error) }, decision));
  }
  box.append(error);
  card.append(box);
}

async function decide(searchId, faceId, decision, note, decided, error) {
  error.textContent = "";
  try {
    const r = await json(`/v1/searches/${searchId}/reviews`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ face_id: faceId, decision, note: note.value.trim() }) });
    decided.textContent = decidedText(r); decided.className = `decided ${r.decision}`;
    note.value = "";
  } catch (e) { error.textContent = e.message; }
}

// -- the Case screen --------------------------------------------------------------------------
async function loadCase(ref) {
  $("case-error").textContent = ""; $("case-view").hidden = true;
  try {
    const c = await json(`/v1/cases/${encodeURIComponent(ref)}`);
    const when = (at) => at.slice(0, 19).replace("T", " ");
    $("case-searches").replaceChildren(...c.searches.map((s) => el("tr", {},
      el("td", { class: "mono" }, s.search_id || "-"), el("td", {}, when(s.at)), el("td", {}, s.actor),
      el("td", {}, s.purpose), el("td", {}, s.sources.join(", ") || "all"),
      el("td", {}, s.outcome === "ok" ? s.candidates : s.outcome))));
    $("case-verifications").replaceChildren(...c.verifications.map((v) => el("tr", {},
      el("td", {}, when(v.at)), el("td", {}, v.actor), el("td", {}, v.purpose),
      el("td", {}, v.decision || v.outcome), el("td", {}, v.distance === null ? "-" : v.distance.toFixed(3)))));
    $("case-candidates").replaceChildren(...c.candidates.map((k) => {
      const r = k.review;
      return el("tr", { "data-face-id": String(k.face_id) },
        el("td", {}, k.held ? String(k.face_id) : `${k.face_id} (erased)`),
        el("td", {}, k.provenance.map((p) => `${p.source}: ${p.locator}`).join("; ") || "-"),
        el("td", {}, k.search_ids.length),
        el("td", { class: r ? r.decision : "" }, r ? r.decision : "not reviewed"),
        el("td", {}, r ? r.reviewer : ""), el("td", {}, r ? when(r.at) : ""), el("td", {}, r ? r.note : ""));
    }));
    $("case-view").hidden = false;
  } catch (e) { $("case-error").textContent = e.message; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("case-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadCase($("case-ref").value.trim()); });
  // Opening the tab shows the case just searched, if any.
  document.querySelector("#tabs button[data-tab=case]").addEventListener("click", () => {
    const searched = $("case") && $("case").value.trim();
    if (searched && !$("case-ref").value) { $("case-ref").value = searched; loadCase(searched); }
  });
});
