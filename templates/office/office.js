// Progressive enhancement only: every page works without this file.
// - the player search answers as the coach types (the form still submits without it);
// - "Copy link" puts a payment link on the clipboard (the link is also in a selectable field);
// - on a phone, where a table's rows are stacked, each cell is named by its column's header.
(function () {
  "use strict";
  document.querySelectorAll("table").forEach(function (table) {
    var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.trim();
    });
    if (!headers.length) { return; }
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, index) {
        if (headers[index] && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", headers[index]); }
      });
    });
  });
  var box = document.querySelector("input[data-live-search]");
  var results = document.getElementById("results");
  if (box && results) {
    var timer = null, latest = 0;
    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var asked = ++latest;
        var url = box.getAttribute("data-live-search") + "?fragment=1&q=" + encodeURIComponent(box.value);
        fetch(url, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) { if (html !== null && asked === latest) { results.innerHTML = html; } })
          .catch(function () {});
        history.replaceState(null, "", "?q=" + encodeURIComponent(box.value));
      }, 150);
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy link"; }, 1500);
    });
  });
})();
