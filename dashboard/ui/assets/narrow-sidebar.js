// On a narrow screen the dashboard's sidebar is a drawer over the page (the page CSS in
// dashboard/ui/layout.py): start with it closed, so the page is what a phone shows first, and
// close it again when the page behind it is tapped. Wider windows keep the template's state.
(function () {
  "use strict";
  var narrow = window.matchMedia("(max-width: 767.98px)");

  function setUp() {
    var sidebar = document.getElementById("sidebar");
    if (!sidebar) {
      return;
    }
    if (narrow.matches) {
      sidebar.classList.remove("show");
      var toggle = document.getElementById("sidebar-toggle");
      if (toggle) {
        toggle.setAttribute("aria-expanded", "false");
        toggle.classList.add("collapsed");
      }
    }
    var main = document.getElementById("main");
    if (main) {
      main.addEventListener("click", function () {
        var collapse = window.bootstrap && window.bootstrap.Collapse;
        if (narrow.matches && collapse && sidebar.classList.contains("show")) {
          collapse.getOrCreateInstance(sidebar, { toggle: false }).hide();
        }
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
