// An admin's sign-in ends after a while without a page (VCPAY_ADMIN_IDLE_MINUTES): the page
// warns shortly before, and "Stay signed in" asks the server for a page, which counts as use.
// When the time is up the page reloads, and the server sends it to sign in again.
(function () {
  "use strict";
  const warning = document.getElementById("idle-warning");
  if (!warning) return;
  const idle = Number(warning.dataset.idleSeconds) * 1000;
  const warn = Number(warning.dataset.warnSeconds) * 1000;
  let timers = [];
  function start() {
    timers.forEach(clearTimeout);
    warning.hidden = true;
    timers = [
      setTimeout(function () { warning.hidden = false; }, warn),
      setTimeout(function () { window.location.reload(); }, idle + 5000),
    ];
  }
  document.getElementById("idle-stay").addEventListener("click", function () {
    fetch(warning.dataset.keepAlive, { credentials: "same-origin" }).then(function (response) {
      if (response.redirected && new URL(response.url).pathname === "/sign-in") {
        window.location.reload();
      } else {
        start();
      }
    });
  });
  start();
})();
