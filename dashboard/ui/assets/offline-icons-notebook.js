// The notebook's counterpart of offline-icons.js: Bokeh's TablerIcon (the icons of Panel's chat
// buttons) loads the Tabler webfont and its CSS from cdn.jsdelivr.net. In a notebook there is no
// server of ours to fetch them from, so both come inline (dashboard/ui/notebook.py puts the subset
// in dashboard/ui/assets/tabler in window.__dashboard_tabler, the font as a data: URL).
// The patch must be in place before the first icon renders, and Panel's loader renders outputs as
// soon as Bokeh is there: this runs before the loader and patches the moment Bokeh is assigned.
(function () {
  "use strict";
  var data = window.__dashboard_tabler;
  function patch() {
    var models = window.Bokeh && window.Bokeh.Models;
    var model = models && models.get && models.get("TablerIcon");
    if (!data || !model) {
      return false;
    }
    var view = model.prototype.default_view;
    if (!view.__dashboard_offline) {
      install(view);
    }
    return true;
  }
  function install(view) {
    view.__dashboard_offline = true;
    // The @font-face must be in the document itself, not a shadow root; Bokeh keeps it here.
    view._fonts = new view._fonts.constructor(data.fontFace);
    var stylesheets = view.prototype.stylesheets;
    view.prototype.stylesheets = function () {
      var own = this._tabler;
      if (!this.__dashboard_icons) {
        // Same class as the view's own inline sheet: it lives in the icon's shadow root.
        this.__dashboard_icons = new this._style.constructor(data.iconCss);
      }
      var icons = this.__dashboard_icons;
      return stylesheets.call(this).map(function (sheet) {
        return sheet === own ? icons : sheet;
      });
    };
  }

  if (patch()) {
    return;  // Bokeh was loaded already (the cell ran again)
  }
  var bokeh = window.Bokeh;
  Object.defineProperty(window, "Bokeh", {
    configurable: true,
    enumerable: true,
    get: function () {
      return bokeh;
    },
    set: function (value) {
      bokeh = value;
      if (patch()) {
        Object.defineProperty(window, "Bokeh", {
          configurable: true, enumerable: true, writable: true, value: value,
        });
      }
    },
  });
})();
