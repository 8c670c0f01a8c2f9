// Live progress of a run, fed by server-sent events from the element's data-events-href.
//
// Event names and their JSON data (the HTTP side sends these; every field is plain text):
//   step        {"text": "Tuning: f0 = 21.472 350 MHz"}
//   insert_tube {"text": "Insert tube 2 of 3: quad", "tube": 2}   -> a Confirm button
//   replicate   {"text": "Tube 2, replicate 1 of 3"}
//   fit         {"text": "Tube 2 replicate 1: T2 = 79.4 ± 0.6 ms (SNR 300)"}
//   result      {"text": "4.2 CTC/7.5 mL (95 % CI 1.1–9.8)", "category": "Detected, below LoQ",
//                "call": "Favourable", "href": "/runs/118"}           -> the result panel
//   failed      {"text": "Board not answering"}                       -> the failure panel
// Text is only ever set with textContent, never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("live-run");
  if (!root || root.getAttribute("data-finished") === "true" || !window.EventSource) { return; }
  var list = root.querySelector("[data-progress-list]");
  var state = root.querySelector("[data-connection-state]");
  var confirmHref = root.getAttribute("data-confirm-href");
  var csrfMeta = document.querySelector("meta[name=csrf-token]");
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function parse(event) {
    try { return JSON.parse(event.data); } catch (error) { return { text: String(event.data) }; }
  }

  function append(kind, text) {
    var item = document.createElement("li");
    item.className = "progress-" + kind;
    item.textContent = text;
    list.appendChild(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function confirmButton(item, payload) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button-primary button-large";
    button.textContent = "Tube " + (payload.tube || "") + " inserted — confirm";
    button.addEventListener("click", function () {
      button.disabled = true;
      button.textContent = "Confirming…";
      fetch(confirmHref, {
        method: "POST",
        credentials: "same-origin",
        headers: { "x-csrf-token": csrfToken, "content-type": "application/json" },
        body: JSON.stringify({ tube: payload.tube })
      }).then(function (response) {
        if (response.ok) {
          button.textContent = "Confirmed";
        } else {
          button.disabled = false;
          button.textContent = "Not confirmed (" + response.status + ") — try again";
        }
      }).catch(function () {
        button.disabled = false;
        button.textContent = "Connection lost — try again";
      });
    });
    item.appendChild(document.createTextNode(" "));
    item.appendChild(button);
  }

  var source = new EventSource(root.getAttribute("data-events-href"), { withCredentials: true });
  source.onopen = function () { state.textContent = "Connected to the instrument."; };
  source.onerror = function () { state.textContent = "Connection interrupted — reconnecting…"; };

  ["step", "replicate", "fit"].forEach(function (kind) {
    source.addEventListener(kind, function (event) { append(kind, parse(event).text); });
  });
  source.addEventListener("insert_tube", function (event) {
    var payload = parse(event);
    confirmButton(append("insert_tube", payload.text), payload);
  });
  source.addEventListener("result", function (event) {
    var payload = parse(event);
    append("result", "Result ready");
    var panel = root.querySelector("[data-result-panel]");
    panel.querySelector("[data-result-text]").textContent = payload.text || "";
    panel.querySelector("[data-result-category]").textContent = payload.category || "";
    panel.querySelector("[data-result-call]").textContent = payload.call || "";
    if (payload.href) { panel.querySelector("[data-result-link]").setAttribute("href", payload.href); }
    panel.hidden = false;
    state.textContent = "Run finished.";
    source.close();
  });
  source.addEventListener("failed", function (event) {
    var panel = root.querySelector("[data-failure-panel]");
    panel.textContent = "The run failed: " + parse(event).text;
    panel.hidden = false;
    state.textContent = "Run stopped.";
    source.close();
  });
})();
