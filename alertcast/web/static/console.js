/* alertcast console: small behaviours every page shares.
 * A form's submit button is disabled once the form is sent, so a double click
 * cannot submit, approve or cancel twice. Nothing here is needed for the
 * console to work: without scripts every form still posts normally. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || event.defaultPrevented) {
      return;
    }
    var buttons = form.querySelectorAll("button[type=submit]");
    // Disabled after this turn of the event loop, so the click still submits the form.
    window.setTimeout(function () {
      for (var i = 0; i < buttons.length; i += 1) {
        buttons[i].disabled = true;
      }
    }, 0);
  });
  var firstError = document.querySelector(".field-error");
  if (firstError && firstError.previousElementSibling && firstError.previousElementSibling.focus) {
    firstError.previousElementSibling.focus();
  }
})();
