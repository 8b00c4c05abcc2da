// The call screen, for both sides: the live panel follows the call's events (Server-Sent
// Events, resumed from the last id after a reconnect), and the popups the clinician's apps
// raise ("payment received") stay until dismissed.
(function () {
  "use strict";
  const root = document.getElementById("call");
  if (!root) return;
  const panel = document.getElementById("live-panel");

  const toggle = document.getElementById("tools-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const drawer = document.getElementById(toggle.getAttribute("aria-controls"));
      const open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      drawer.hidden = open;
      // The first field of the first app's tool, ready to type in.
      const first = drawer.querySelector("input:not([type=hidden]), select, textarea");
      if (!open && first) first.focus();
    });
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const input = document.querySelector(button.dataset.copy);
      input.select();
      if (navigator.clipboard) navigator.clipboard.writeText(input.value);
      button.textContent = button.dataset.copied || "Copied";
    });
  });

  // A form that ends or undoes something asks first (without JavaScript it simply posts).
  // One click, one request: the form carries a key, and the button goes quiet once pressed.
  // Listened for on the document, so forms the live panel or the tools bring in count too.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    const button = form.querySelector("[data-once]");
    if (button) setTimeout(function () { button.disabled = true; }, 0);
  });

  const dialog = document.getElementById("popup");
  const waiting = [];
  const seen = new Set();

  function collectPopups() {
    panel.querySelectorAll("template[data-popup]").forEach(function (popup) {
      if (seen.has(popup.dataset.popup)) return;
      seen.add(popup.dataset.popup);
      waiting.push(popup);
    });
    showNextPopup();
  }

  function showNextPopup() {
    if (!dialog || dialog.open || waiting.length === 0) return;
    document.getElementById("popup-title").textContent = waiting[0].dataset.title || "";
    document.getElementById("popup-text").textContent = waiting[0].content.textContent.trim();
    dialog.showModal();
  }

  if (dialog) {
    document.getElementById("popup-dismiss").addEventListener("click", function () {
      const popup = waiting.shift();
      fetch(popup.dataset.ackUrl, {
        method: "POST",
        headers: { "X-CSRFToken": root.dataset.csrfToken },
        credentials: "same-origin",
        keepalive: true, // a reload right after Dismiss must not cancel it
      });
      dialog.close();
      showNextPopup();
    });
  }

  let pending = null;
  function refreshPanel() {
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      fetch(root.dataset.panelUrl, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) return;
          panel.innerHTML = html;
          collectPopups();
          // The apps' tools may follow what the live panel now shows (who is in the call).
          document.dispatchEvent(new CustomEvent("call:panel-refreshed"));
        });
    }, 30);
  }

  // What the tools offer changed outside the call (a clinic admin linked Stripe): show them
  // again, keeping the drawer as it is.
  const tools = document.getElementById("tools");
  function refreshTools() {
    if (!tools) return;
    fetch(tools.dataset.toolsUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        tools.innerHTML = html;
        document.dispatchEvent(new CustomEvent("call:tools-refreshed"));
      });
  }

  collectPopups();
  if (!window.EventSource) return;

  // Following the call live. A newer screen of the same person (or too many on one network)
  // replaces this stream: say so and offer to follow here, rather than reconnect and push
  // the other one out in turn. A busy server answers 503, after which EventSource gives up:
  // try again with a growing, jittered delay, from the last event seen.
  const notice = document.getElementById("live-notice");
  let lastEventId = root.dataset.lastEventId;
  let source = null;
  let failures = 0;

  function say(reason) {
    notice.hidden = !reason;
    notice.querySelectorAll("[data-reason]").forEach(function (line) {
      line.hidden = line.dataset.reason !== reason;
    });
    document.getElementById("follow-here").hidden = !reason || reason === "paused";
  }

  function follow() {
    source = new EventSource(root.dataset.eventsUrl + "?after=" + lastEventId);
    source.onopen = function () {
      failures = 0;
      say(null);
    };
    source.onmessage = function (event) {
      if (event.lastEventId) lastEventId = event.lastEventId;
      if (JSON.parse(event.data).kind === "tools_changed") refreshTools();
      refreshPanel();
    };
    source.addEventListener("closed", function () {
      source.close();
      refreshPanel();
    });
    source.addEventListener("replaced", function (event) {
      source.close();
      say(JSON.parse(event.data).reason === "address" ? "address" : "session");
    });
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects itself
      say("paused");
      const delay = Math.min(60000, 2000 * Math.pow(2, failures)) * (0.5 + Math.random() / 2);
      failures = Math.min(failures + 1, 5);
      setTimeout(function () {
        refreshPanel(); // anything missed meanwhile
        follow();
      }, delay);
    };
  }

  document.getElementById("follow-here").addEventListener("click", function () {
    say(null);
    refreshPanel();
    follow();
  });
  follow();
})();
