// botrelay console: the dead-letter actions. Every bulk action is first a
// dry run that says what it would do; "Go" then replays (or deletes) the
// dry run's dead letters in batches, showing the progress. Replays carry
// the dead-letter dedup id, so a repeated click never posts twice.
"use strict";
(function () {
  const BATCH = 20;
  const $ = (sel) => document.querySelector(sel);
  const plan = $("#plan");
  if (!plan) return;
  const text = $("#plan-text"), bar = $("#plan-progress"), go = $("#plan-go"), cancel = $("#plan-cancel");
  let pending = null; // {action, seqs, del}
  let running = false;

  const selectAll = $("#select-all");
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      document.querySelectorAll("input.pick").forEach((c) => { c.checked = selectAll.checked; });
    });
  }

  async function post(action, body) {
    const resp = await fetch("/api/v1/deadletters:" + action, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({ error: "HTTP " + resp.status }));
    if (!resp.ok) throw new Error(data.error || "HTTP " + resp.status);
    return data;
  }

  function describe(counts) {
    const names = {
      would_replay: "would be replayed", would_delete: "would be deleted", replayed: "replayed",
      already_replayed: "already replayed (skipped)", not_replayable: "not replayable (no envelope)",
      deleted: "deleted", not_found: "not found", failed: "failed",
    };
    return Object.keys(counts).sort().map((k) => counts[k] + " " + (names[k] || k)).join(", ") || "nothing";
  }

  function show(msg, canGo) {
    plan.hidden = false;
    text.textContent = msg;
    go.hidden = !canGo;
    go.disabled = !canGo;
  }

  async function dryRun(button) {
    if (running) return;
    const action = button.dataset.action, scope = button.dataset.scope;
    const delAfter = $("#delete-after");
    const del = action === "replay" && delAfter !== null && delAfter.checked;
    let body;
    if (scope === "one") {
      body = { seqs: [Number(button.closest("[data-seq]").dataset.seq)] };
    } else if (scope === "selected") {
      const seqs = Array.from(document.querySelectorAll("input.pick:checked")).map((c) => Number(c.value));
      if (seqs.length === 0) { show("Select dead letters first.", false); return; }
      body = { seqs: seqs };
    } else {
      body = JSON.parse(document.querySelector("table.dead").dataset.filter);
    }
    body.dry_run = true;
    if (del) body.delete = true;
    show("Dry run…", false);
    bar.hidden = true;
    try {
      const ans = await post(action, body);
      const want = action === "replay" ? "would_replay" : "would_delete";
      const seqs = ans.items.filter((it) => it.status === want).map((it) => it.seq);
      pending = { action: action, seqs: seqs, del: del };
      const verb = action === "replay" ? (del ? "replay and delete" : "replay") : "delete";
      show("Dry run: " + ans.matched + " matched; " + describe(ans.counts) + ". " +
        (seqs.length ? "Go to " + verb + " " + seqs.length + "." : "Nothing to do."), seqs.length > 0);
      if (seqs.length) go.focus();
    } catch (e) {
      show("Dry run failed: " + e.message, false);
    }
  }

  async function run() {
    if (!pending || running) return;
    running = true;
    go.disabled = true;
    const job = pending;
    pending = null;
    const totals = {};
    bar.hidden = false;
    bar.max = job.seqs.length;
    bar.value = 0;
    try {
      for (let i = 0; i < job.seqs.length; i += BATCH) {
        const body = { seqs: job.seqs.slice(i, i + BATCH) };
        if (job.del) body.delete = true;
        const ans = await post(job.action, body);
        for (const k in ans.counts) totals[k] = (totals[k] || 0) + ans.counts[k];
        bar.value = Math.min(i + BATCH, job.seqs.length);
        text.textContent = "Working: " + bar.value + " of " + job.seqs.length + " (" + describe(totals) + ")";
      }
      show("Done: " + describe(totals) + ". Reload to see the list now.", false);
    } catch (e) {
      show("Stopped: " + e.message + " (" + describe(totals) + ")", false);
    } finally {
      running = false;
    }
  }

  document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", () => dryRun(b)));
  go.addEventListener("click", run);
  cancel.addEventListener("click", () => { if (!running) { pending = null; plan.hidden = true; } });
})();
