// The pay-first page follows the call's events: when the fee is paid or waived (or a payment
// of it ends), the call's address is opened again, which shows the call or this page anew.
(function () {
  "use strict";
  const root = document.getElementById("pay-first");
  if (!root || !window.EventSource) return;
  const moves = [
    "payment_paid", "payment_processing", "payment_expired", "payment_failed",
    "payment_cancelled", "fee_waived", "participant_recognised", "call_ended",
  ];
  let lastEventId = root.dataset.lastEventId;
  const source = new EventSource(root.dataset.eventsUrl + "?after=" + lastEventId);
  source.onmessage = function (event) {
    if (moves.indexOf(JSON.parse(event.data).kind) === -1) return;
    source.close();
    window.location.assign(root.dataset.joinUrl);
  };
  source.addEventListener("closed", function () {
    source.close();
    window.location.assign(root.dataset.joinUrl);
  });
})();
