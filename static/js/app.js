/* Small behaviours shared by every page, as a file: the Content-Security-Policy allows no
 * inline script or on...= handler attributes.
 * - <select data-autosubmit> submits its form when changed (run pickers). */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) {
      el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    }
  });
})();
