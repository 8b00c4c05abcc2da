// Request Payment's "Who pays": the choices follow the people in the call (the live panel
// brings them, in its <template id="payer-choices">), and a choice made by hand stays.
(function () {
  "use strict";
  const payer = document.getElementById("payer");
  if (!payer) return;
  payer.addEventListener("change", function () { payer.dataset.touched = "1"; });
  document.addEventListener("call:panel-refreshed", function () {
    const choices = document.getElementById("payer-choices");
    if (!choices) return;
    const chosen = payer.value;
    payer.innerHTML = choices.innerHTML;
    const still = Array.from(payer.options).some(function (o) { return o.value === chosen; });
    if (payer.dataset.touched && still) payer.value = chosen;
  });
})();
