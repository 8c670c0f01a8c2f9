// Live progress of a run, fed by the server-sent events of GET /api/v1/runs/{id}/events (the
// element's data-events-href): the run's stored history first, then what happens. Each SSE event is named after the engine's event tag and carries
// the engine's event as JSON (appliance::engine::RunEvent; see web-ui/src/api/runs.rs):
//   state            {"state": "running", "cause": null}        after the history, and every move
//   check            {"check": "qc_today", "passed": true, "message": "..."}
//   tuning           {}
//   tuned            {"f0_hz": 21472350.0, "magnet_temp_c": 32.01}
//   calibrating      {"lot": "SIM-LOT-1", "te_us": 1000, "message": "..."}
//   calibration_made {"lot": "...", "calibration_id": 3, ...}
//   awaiting_tube    {"tube": "quad", "index": 2, "of": 3, "message": "..."}  -> a Confirm button
//   tube_confirmed   {"tube": "quad", "index": 2, "automatic": false}
//   replicate        {"tube": "control", "replicate": 1, "of": 3, "t2_ms": 84.2, "snr": 310,
//                     "fit_error": null, "qc_flags": [...]}
//   result           {"result": {..., "qc_hold": false}} -> the completion panel (QC state
//                     only: the count and call are not shown at the bedside)
//   failed           {"failure": {"kind": "board", "message": "..."}}       -> the failure panel
//   notice           {"message": "..."}
// The wording matches the server's (web-ui/src/pages/runs.rs, web-ui/src/views/format.rs), so a
// reloaded page reads like the live one. Text is only ever set with textContent, never parsed as
// HTML. The stream ends when the run is settled; a run settled while the page was loading is
// shown by reloading the page (the server then renders its result).
(function () {
  "use strict";
  var root = document.getElementById("live-run");
  if (!root || root.getAttribute("data-finished") === "true" || !window.EventSource) { return; }
  var list = root.querySelector("[data-progress-list]");
  var state = root.querySelector("[data-connection-state]");
  var confirmHref = root.getAttribute("data-confirm-href");
  var csrfMeta = document.querySelector("meta[name=csrf-token]");
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var done = false;

  function parse(event) {
    try { return JSON.parse(event.data) || {}; } catch (error) { return {}; }
  }

  function frequencyMhz(hz) {
    var text = (hz / 1e6).toFixed(6);
    var parts = text.split(".");
    return parts[0] + "." + parts[1].slice(0, 3) + " " + parts[1].slice(3) + " MHz";
  }

  function tubeName(name) {
    return String(name || "").charAt(0).toUpperCase() + String(name || "").slice(1);
  }

  // "Quad tube, replicate 1 of 3: T2 = 79.4 ms (SNR 300)" (runs::replicate_text).
  function replicateText(p) {
    var head = tubeName(p.tube) + " tube, replicate " + p.replicate + " of " + p.of + ": ";
    if (typeof p.t2_ms === "number") {
      var snr = typeof p.snr === "number" ? " (SNR " + p.snr.toFixed(0) + ")" : "";
      return head + "T2 = " + p.t2_ms.toFixed(1) + " ms" + snr;
    }
    return head + "no fit (" + (p.fit_error || "unknown reason") + ")";
  }

  function append(kind, text) {
    var item = document.createElement("li");
    item.className = "progress-" + kind;
    item.textContent = text;
    list.appendChild(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function wireConfirm(button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      button.textContent = "Confirming…";
      fetch(confirmHref, {
        method: "POST",
        credentials: "same-origin",
        headers: { "x-csrf-token": csrfToken }
      }).then(function (response) {
        if (response.ok) {
          button.textContent = "Confirmed";
          return;
        }
        // The API answers problem details: say its words, not the status code.
        return response.json().catch(function () { return {}; }).then(function (problem) {
          button.disabled = false;
          var why = problem.detail || problem.title || "the instrument did not accept it";
          button.textContent = "Not confirmed: " + why + " — try again";
        });
      }).catch(function () {
        button.disabled = false;
        button.textContent = "Connection lost — try again";
      });
    });
  }

  function retirePendingConfirms() {
    Array.prototype.forEach.call(list.querySelectorAll("button"), function (button) {
      var mark = document.createElement("span");
      mark.className = "muted";
      mark.textContent = "(confirmed)";
      button.replaceWith(mark);
    });
  }

  function confirmButton(item, index) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button-primary button-large";
    button.textContent = "Tube " + (index || "") + " inserted — confirm";
    button.setAttribute("data-confirm-tube", String(index || ""));
    wireConfirm(button);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(button);
  }

  // A page loaded while a tube waits for the operator carries its button already.
  Array.prototype.forEach.call(root.querySelectorAll("[data-confirm-tube]"), wireConfirm);

  var source = new EventSource(root.getAttribute("data-events-href"), { withCredentials: true });
  source.onopen = function () { state.textContent = "Connected to the instrument."; };
  source.onerror = function () {
    if (!done) { state.textContent = "Connection interrupted — reconnecting…"; }
  };

  function finished(message) {
    done = true;
    state.textContent = message;
    var cancel = document.querySelector(".cancel-run");
    if (cancel) { cancel.hidden = true; }
    source.close();
  }

  // As the pages say it: "Failed: <cause>"; a cancel's cause already reads "cancelled by ann: …".
  function outcomeWords(s, cause) {
    var words = { failed: "Failed", cancelled: "Cancelled", interrupted: "Interrupted" }[s] || s;
    if (!cause) { return words; }
    if (s === "cancelled" && cause.indexOf("cancelled ") === 0) {
      return "Cancelled " + cause.slice("cancelled ".length);
    }
    return words + ": " + cause;
  }

  function showFailure(text) {
    retirePendingConfirms();
    var panel = root.querySelector("[data-failure-panel]");
    panel.textContent = "The run stopped: " + text;
    panel.hidden = false;
    finished("Run stopped.");
  }

  // The stream first replays the run's stored history (events with an id), so a page opened late
  // shows every step. The lines the server rendered are a summary of the same history: the first
  // replayed event replaces them. A reconnection replays only what came after the last id
  // (the browser sends Last-Event-ID), so nothing repeats.
  var historyShown = false;
  function showHistory(event) {
    if (historyShown || !event.lastEventId) { return; }
    historyShown = true;
    while (list.firstChild) { list.removeChild(list.firstChild); }
  }

  function on(name, handler) {
    source.addEventListener(name, function (event) {
      showHistory(event);
      if (!done) { handler(parse(event)); }
    });
  }

  on("state", function (p) {
    var s = p.state;
    if (s === "awaiting_tube") {
      // The tube request may have been sent before this page listened: offer the button anyway.
      // The named request (awaiting_tube) usually follows at once and replaces this line.
      if (!list.querySelector("button")) {
        var placeholder = append("insert_tube", "Insert the next tube");
        placeholder.setAttribute("data-unnamed-tube", "");
        confirmButton(placeholder, "");
      }
    } else if (s === "running" || s === "queued") {
      state.textContent = s === "queued" ? "Waiting for the instrument…" : "Measuring…";
    } else if (s === "failed" || s === "cancelled" || s === "interrupted") {
      showFailure(outcomeWords(s, p.cause));
    } else if (s === "awaiting_release" || s === "released") {
      // Settled before its result reached this page: the page shows the stored result.
      finished("Run finished.");
      window.location.reload();
    }
  });
  on("check", function (p) {
    append("step", "Check " + String(p.check || "").replace(/_/g, " ") + ": " +
      (p.passed ? "passed" : "not passed") + (p.message ? " — " + p.message : ""));
  });
  on("tuning", function () { append("step", "Tuning the probe…"); });
  on("tuned", function (p) {
    var temp = typeof p.magnet_temp_c === "number" ? ", magnet " + p.magnet_temp_c.toFixed(2) + " °C" : "";
    append("step", "Tuned: f0 = " + frequencyMhz(p.f0_hz) + temp);
  });
  on("calibrating", function (p) { append("step", p.message || "Calibrating the reagent lot…"); });
  on("calibration_made", function (p) { append("step", "Calibration made for lot " + (p.lot || "") + "."); });
  on("notice", function (p) { append("step", p.message || ""); });
  on("awaiting_tube", function (p) {
    var unnamed = list.querySelector("[data-unnamed-tube]");
    if (unnamed) { unnamed.remove(); }
    retirePendingConfirms();
    confirmButton(append("insert_tube", "Insert tube " + p.index + " of " + p.of + ": " + p.tube), p.index);
  });
  on("tube_confirmed", function (p) {
    retirePendingConfirms();
    append("step", "Tube " + p.index + " (" + p.tube + ") in place" + (p.automatic ? " (simulation)" : "") + ".");
  });
  on("replicate", function (p) {
    retirePendingConfirms();
    append(typeof p.t2_ms === "number" ? "fit" : "replicate", replicateText(p));
  });
  on("result", function (p) {
    var result = p.result || {};
    retirePendingConfirms();
    append("result", "Measurement complete");
    // The bedside shows completion and QC state, never the count or the prognostic call: the
    // result is preliminary until a clinician releases it.
    var panel = root.querySelector("[data-result-panel]");
    var qc = panel.querySelector("[data-result-qc]");
    qc.textContent = "";
    var badge = document.createElement("span");
    badge.className = "badge " + (result.qc_hold ? "status-fail" : "status-ok");
    badge.textContent = result.qc_hold ? "QC hold" : "QC: no hold";
    qc.appendChild(badge);
    if (result.qc_hold) { qc.appendChild(document.createTextNode(" A QC flag holds this result: tell the lab.")); }
    panel.hidden = false;
    finished("Run finished.");
  });
  on("failed", function (p) {
    var failure = p.failure || {};
    showFailure((failure.kind ? failure.kind + ": " : "") + (failure.message || "unknown cause"));
  });
})();
