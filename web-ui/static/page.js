// Behaviour every signed-in page shares (no inline scripts, so a strict Content-Security-Policy
// with script-src 'self' holds).
//
// Print buttons: elements marked data-print are hidden until this script shows them (without
// JavaScript they could not print) and print the page when pressed; printing opens the collapsed
// replicate charts.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  // A form that came back with an error marks its field autofocus; focus it even when the page
  // opened at a fragment (browsers skip autofocus then), so the signer types again in place.
  var again = document.querySelector("input[autofocus]");
  if (again) { again.focus({ preventScroll: true }); }
  // A link to a place inside a closed disclosure (the set-up checklist's "/qc#setup-heading")
  // opens it, so the reader lands on what the link named rather than on a folded heading.
  function openTarget() {
    var id = window.location.hash.slice(1);
    var target = id && document.getElementById(decodeURIComponent(id));
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    if (target) { target.scrollIntoView(); }
  }
  openTarget();
  window.addEventListener("hashchange", openTarget);
  // The replicate charts are collapsed on screen (<details>); a printout shows them all.
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details.charts-details"), function (details) {
      details.open = true;
    });
  });
})();

// Inactivity notice: one minute before the session's inactivity timeout, show a notice with a
// countdown; at the timeout, go to the sign-in page (the server ends the session on its own
// clock anyway — this only tells the user). Any key, click or touch counts as activity.
(function () {
  "use strict";
  var notice = document.getElementById("inactivity-notice");
  if (!notice) { return; }
  var timeoutS = parseInt(notice.getAttribute("data-timeout-s"), 10);
  if (!(timeoutS > 0)) { return; }
  var signInHref = notice.getAttribute("data-sign-in-href");
  var countdown = notice.querySelector("[data-countdown]");
  var warnS = Math.min(60, Math.floor(timeoutS / 2));
  var lastActivity = Date.now();
  var lastPing = Date.now();

  // The server ends a session on its own clock, counted from the last request. Activity on the
  // page (typing into a long form, reading a report) is activity too: tell the server, at most
  // once a minute, by asking who is signed in (which renews the session).
  function ping() {
    lastPing = Date.now();
    if (!window.fetch) { return; }
    window.fetch("/api/v1/session", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.assign(signInHref); }
      })
      .catch(function () { /* offline for a moment: the next activity tries again */ });
  }

  function touch() {
    lastActivity = Date.now();
    if (!notice.hidden) { notice.hidden = true; }
    if (Date.now() - lastPing > 60000) { ping(); }
  }
  ["keydown", "pointerdown", "touchstart", "scroll"].forEach(function (name) {
    window.addEventListener(name, touch, { passive: true });
  });
  var stay = notice.querySelector("[data-stay-signed-in]");
  if (stay) { stay.addEventListener("click", function () { touch(); ping(); }); }

  window.setInterval(function () {
    var idleS = (Date.now() - lastActivity) / 1000;
    var leftS = Math.ceil(timeoutS - idleS);
    if (leftS <= 0) {
      window.location.assign(signInHref);
    } else if (leftS <= warnS) {
      if (countdown) { countdown.textContent = String(leftS); }
      notice.hidden = false;
    }
  }, 1000);
})();

// A file input marked data-fills="<textarea id>" reads the chosen text file into that textarea
// (the calibration import: the form posts text, so no upload encoding is needed).
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("input[type=file][data-fills]"), function (input) {
    var target = document.getElementById(input.getAttribute("data-fills"));
    if (!target || !window.FileReader) { return; }
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { return; }
      var reader = new FileReader();
      reader.onload = function () { target.value = String(reader.result); };
      reader.readAsText(file);
    });
  });
})();
