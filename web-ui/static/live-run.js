// Live progress of a run, fed by server-sent events from the element's data-events-href.
//
// Event names and their JSON data (the HTTP side sends these; every field is plain text):
//   step        {"text": "Tuning: f0 = 21.472 350 MHz"}
//   insert_tube {"text": "Insert tube 2 of 3: quad", "tube": 2}   -> a Confirm button
//   replicate   {"text": "Tube 2, replicate 1 of 3"}
//   fit         {"text": "Tube 2 replicate 1: T2 = 79.4 ± 0.6 ms (SNR 300)"}
//   result      {"text": "4.2 CTC/7.5 mL (95 % CI 1.1–9.8)", "category": "Detected, below LoQ",
//                "category_code": "below_loq", "call": "Favourable", "call_code": "favorable",
//                "href": "/runs/118"}                                  -> the result panel
//   failed      {"text": "Board not answering"}                       -> the failure panel
// Text is only ever set with textContent, never parsed as HTML. Any event after a tube request
// means the tube was taken: its confirm button is retired.
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

  function wireConfirm(button, tube) {
    button.addEventListener("click", function () {
      button.disabled = true;
      button.textContent = "Confirming…";
      fetch(confirmHref, {
        method: "POST",
        credentials: "same-origin",
        headers: { "x-csrf-token": csrfToken, "content-type": "application/json" },
        body: JSON.stringify({ tube: tube })
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
  }

  function retirePendingConfirms() {
    Array.prototype.forEach.call(list.querySelectorAll("button"), function (button) {
      var done = document.createElement("span");
      done.className = "muted";
      done.textContent = "(confirmed)";
      button.replaceWith(done);
    });
  }

  function confirmButton(item, payload) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button-primary button-large";
    button.textContent = "Tube " + (payload.tube || "") + " inserted — confirm";
    wireConfirm(button, payload.tube);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(button);
  }

  // A page loaded while a tube waits for the operator carries its button already.
  Array.prototype.forEach.call(root.querySelectorAll("[data-confirm-tube]"), function (button) {
    wireConfirm(button, parseInt(button.getAttribute("data-confirm-tube"), 10));
  });

  var source = new EventSource(root.getAttribute("data-events-href"), { withCredentials: true });
  source.onopen = function () { state.textContent = "Connected to the instrument."; };
  source.onerror = function () { state.textContent = "Connection interrupted — reconnecting…"; };

  function finished(message) {
    state.textContent = message;
    var cancel = document.querySelector(".cancel-run");
    if (cancel) { cancel.hidden = true; }
    source.close();
  }

  ["step", "replicate", "fit"].forEach(function (kind) {
    source.addEventListener(kind, function (event) {
      retirePendingConfirms();
      append(kind, parse(event).text);
    });
  });
  source.addEventListener("insert_tube", function (event) {
    var payload = parse(event);
    retirePendingConfirms();
    confirmButton(append("insert_tube", payload.text), payload);
  });
  source.addEventListener("result", function (event) {
    var payload = parse(event);
    retirePendingConfirms();
    append("result", "Result ready");
    var panel = root.querySelector("[data-result-panel]");
    panel.querySelector("[data-result-text]").textContent = payload.text || "";
    var category = panel.querySelector("[data-result-category]");
    category.textContent = payload.category || "";
    category.className = "category category-" + String(payload.category_code || "");
    var call = panel.querySelector("[data-result-call]");
    call.textContent = payload.call || "";
    call.className = "call " + ({ favorable: "call-favourable", unfavorable: "call-unfavourable" }[payload.call_code] || "call-none");
    if (payload.href) { panel.querySelector("[data-result-link]").setAttribute("href", payload.href); }
    panel.hidden = false;
    finished("Run finished.");
  });
  source.addEventListener("failed", function (event) {
    var panel = root.querySelector("[data-failure-panel]");
    panel.textContent = "The run failed: " + parse(event).text;
    panel.hidden = false;
    finished("Run stopped.");
  });
})();
