// Bokeh's TablerIcon (the icons of Panel's chat buttons) loads the Tabler webfont from
// cdn.jsdelivr.net: with no internet the icons are blank and the page calls a third party.
// Point it at the subset this server ships (dashboard/ui/assets/tabler) before any view exists.
(function () {
  "use strict";
  var base = "/api/assets/tabler";
  var models = window.Bokeh && window.Bokeh.Models;
  var model = models && models.get && models.get("TablerIcon");
  if (!model) {
    return;
  }
  var view = model.prototype.default_view;
  view._url = base;
  // Fonts must be declared in the document, not in a shadow root; Bokeh keeps that sheet here.
  view._fonts = new view._fonts.constructor(
    '@font-face{font-family:"tabler-icons";font-style:normal;font-weight:400;' +
      'src:url("' + base + '/fonts/tabler-icons.woff2") format("woff2")}'
  );
})();
