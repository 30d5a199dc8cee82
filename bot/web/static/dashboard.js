// Small conveniences only; every page works without this script.
"use strict";
(function () {
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy-target]");
    if (button) {
      const field = document.getElementById(button.getAttribute("data-copy-target"));
      field.select();
      if (navigator.clipboard) navigator.clipboard.writeText(field.value);
      button.textContent = "Copied";
    }
    if (event.target.closest("[data-print]")) window.print();
  });
})();
