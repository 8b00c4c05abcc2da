// Request Payment's "Who pays": the choices follow the people in the call (the live panel
// brings them, in its <template id="payer-choices">), and a choice made by hand stays.
// The form may come later (the tools shown again once the clinic's Stripe link is made), so
// it is looked up each time.
(function () {
  "use strict";
  if (window.vcpayRequestPayment) return; // the tools, shown again, bring this script again
  window.vcpayRequestPayment = true;
  document.addEventListener("change", function (event) {
    if (event.target.id === "payer") event.target.dataset.touched = "1";
  });
  function followPeople() {
    const payer = document.getElementById("payer");
    const choices = document.getElementById("payer-choices");
    if (!payer || !choices) return;
    const chosen = payer.value;
    payer.innerHTML = choices.innerHTML;
    const still = Array.from(payer.options).some(function (o) { return o.value === chosen; });
    if (payer.dataset.touched && still) payer.value = chosen;
  }
  document.addEventListener("call:panel-refreshed", followPeople);
  document.addEventListener("call:tools-refreshed", followPeople);
})();
