// The auditor's view: the audit log with case, purpose, sources searched and faces returned
// as columns, filtered (actor, action, case, dates) and paged on the server
// (GET /v1/audit: `before` cursor, `next_before` for the next older page).
"use strict";

const audit = { cursors: [], before: null, next: null };

function auditQuery() {
  const q = new URLSearchParams();
  q.set("limit", $("af-limit").value || "50");
  for (const [key, id] of [["actor", "af-actor"], ["action", "af-action"], ["case", "af-case"],
                           ["since", "af-since"], ["until", "af-until"]]) {
    const v = $(id).value.trim();
    if (v) q.set(key, v);
  }
  if (audit.before) q.set("before", String(audit.before));
  return q;
}

function facesCell(ids) {
  if (!ids.length) return "";
  const shown = ids.slice(0, 8).join(", ");
  return `${ids.length}: ${shown}${ids.length > 8 ? ", ..." : ""}`;
}

async function loadAudit() {
  try {
    const log = await json(`/v1/audit?${auditQuery()}`);
    const v = log.verification;
    $("audit-status").textContent = v.ok
      ? `Chain verified: all ${v.entries} entries intact (head ${v.head_hash.slice(0, 12)}...).`
      : `CHAIN BROKEN at entry ${v.first_bad}: ${v.reason}`;
    $("audit-status").className = "status " + (v.ok ? "ok" : "bad");
    $("audit-rows").replaceChildren(...log.entries.map((e) => el("tr", { "data-seq": String(e.seq) },
      el("td", {}, e.seq), el("td", {}, e.at), el("td", {}, e.actor), el("td", {}, e.role),
      el("td", {}, e.action), el("td", { class: "case" }, e.case), el("td", {}, e.purpose),
      el("td", { class: "sources" }, e.sources.join(", ")),
      el("td", { class: "faces" }, facesCell(e.face_ids)), el("td", {}, e.outcome),
      el("td", { class: "details" }, JSON.stringify(e.details)))));
    audit.next = log.next_before;
    $("audit-older").disabled = !audit.next;
    $("audit-newer").disabled = !audit.cursors.length;
    const page = audit.cursors.length + 1;
    $("audit-page").textContent = `page ${page}: ${log.entries.length} entries of ${log.total} in the log`;
  } catch (e) { $("audit-status").textContent = e.message; $("audit-status").className = "status bad"; }
}

async function anchorAudit() {
  try {
    const head = await json("/v1/audit/anchors", { method: "POST" });
    $("audit-anchor").textContent = `Signed head of entry ${head.seq}; keep this line somewhere else: ${head.line}`;
  } catch (e) { $("audit-anchor").textContent = e.message; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("audit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); audit.cursors = []; audit.before = null; loadAudit();
  });
  $("audit-older").addEventListener("click", () => {
    if (!audit.next) return;
    audit.cursors.push(audit.before); audit.before = audit.next; loadAudit();
  });
  $("audit-newer").addEventListener("click", () => {
    if (!audit.cursors.length) return;
    audit.before = audit.cursors.pop(); loadAudit();
  });
  $("af-anchor").addEventListener("click", anchorAudit);
});
