// Keyboard review and "select all" for the Admin UI; every page works without it.
(function () {
  "use strict";
  function tiles(form) { return Array.prototype.slice.call(form.querySelectorAll(".tile")); }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-review]");
    if (!form) { return; }
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.addEventListener("change", function () {
        form.querySelectorAll("input[name=ids]").forEach(function (box) {
          box.checked = all.checked;
          box.closest(".tile").classList.toggle("selected", all.checked);
        });
      });
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "ids") { event.target.closest(".tile").classList.toggle("selected", event.target.checked); }
    });
    var list = tiles(form);
    if (list.length && !form.querySelector("[data-key]")) { return; }
    if (list.length) { list[0].focus(); }

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      var tag = (event.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select") { return; }
      var current = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".tile") : null;
      var index = current ? list.indexOf(current) : -1;
      var key = event.key;
      if (key === "ArrowRight" || key === "ArrowDown" || key === "j") {
        list[Math.min(list.length - 1, index + 1)].focus(); event.preventDefault();
      } else if (key === "ArrowLeft" || key === "ArrowUp" || key === "k") {
        list[Math.max(0, index - 1)].focus(); event.preventDefault();
      } else if (current && (key === "x" || key === " ")) {
        var box = current.querySelector("input[name=ids]");
        box.checked = !box.checked; current.classList.toggle("selected", box.checked); event.preventDefault();
      } else if (current && (key === "a" || key === "r")) {
        var button = current.querySelector("button[data-key=" + key + "]");
        if (button) { event.preventDefault(); button.click(); }
      }
    });
  });
})();
