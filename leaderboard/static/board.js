/* biasboard pages: sortable tables, overview filters, mean rank recomputed over what is visible.
   Plain JavaScript, no libraries, works from file://. Cells carry data-sort (numbers sort numerically,
   blanks always last); metric cells sort by distance from the ideal, so ascending = best first. */
(function () {
  "use strict";

  function sortValue(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (raw === "") return null;
    if (numeric) { var x = parseFloat(raw); return isNaN(x) ? null : x; }
    return raw.toLowerCase();
  }

  function sortTable(table, th) {
    var headers = Array.prototype.slice.call(th.parentNode.children);
    var index = headers.indexOf(th);
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r._pos = i; });
    rows.sort(function (a, b) {
      var va = sortValue(a.cells[index], numeric), vb = sortValue(b.cells[index], numeric);
      if (va === null && vb === null) return a._pos - b._pos;
      if (va === null) return 1;
      if (vb === null) return -1;
      var c = va < vb ? -1 : va > vb ? 1 : 0;
      return (ascending ? c : -c) || a._pos - b._pos;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function initSorting() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      if (!table.tHead) return;
      Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-type]"), function (th) {
        th.tabIndex = 0;
        th.addEventListener("click", function (ev) {
          if (ev.target.tagName === "A") return;
          sortTable(table, th);
        });
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortTable(table, th); }
        });
      });
    });
  }

  /* Average ranks (ties share the mean rank) of the visible rows in each visible column, then per-row mean. */
  function recomputeRanks(board, rows) {
    var cols = Array.prototype.filter.call(board.tHead.querySelectorAll("th[data-col]"), function (th) {
      return !th.classList.contains("hidden-col");
    }).map(function (th) { return th.getAttribute("data-col"); });
    var sums = rows.map(function () { return 0; }), counts = rows.map(function () { return 0; });
    cols.forEach(function (col) {
      var vals = [];
      rows.forEach(function (r, i) {
        var td = r.querySelector('td[data-col="' + cssEscape(col) + '"]');
        var v = td ? td.getAttribute("data-badness") : "";
        if (v !== null && v !== "") vals.push({ i: i, v: parseFloat(v) });
      });
      vals.sort(function (a, b) { return a.v - b.v; });
      var k = 0;
      while (k < vals.length) {
        var j = k;
        while (j + 1 < vals.length && vals[j + 1].v === vals[k].v) j++;
        var rank = (k + j) / 2 + 1;
        for (var m = k; m <= j; m++) { sums[vals[m].i] += rank; counts[vals[m].i] += 1; }
        k = j + 1;
      }
    });
    rows.forEach(function (r, i) {
      var td = r.querySelector("td.mean-rank");
      if (!td) return;
      var mean = counts[i] ? sums[i] / counts[i] : null;
      td.setAttribute("data-sort", mean === null ? "" : String(mean));
      td.querySelector(".mr").textContent = mean === null ? "\u2013" : (Math.round(mean * 100) / 100).toString();
      td.querySelector(".nr").textContent = "(" + counts[i] + ")";
    });
  }

  function cssEscape(s) { return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/["\\]/g, "\\$&"); }

  function initFilters() {
    var board = document.getElementById("board");
    if (!board) return;
    var controls = document.querySelectorAll("[data-filter]");
    function apply() {
      var f = {};
      Array.prototype.forEach.call(controls, function (c) { f[c.getAttribute("data-filter")] = c.value.trim().toLowerCase(); });
      Array.prototype.forEach.call(board.querySelectorAll("[data-col]"), function (el) {
        var hide = (f.axis && el.getAttribute("data-axis").toLowerCase() !== f.axis) ||
                   (f.task && el.getAttribute("data-task").toLowerCase() !== f.task);
        el.classList.toggle("hidden-col", !!hide);
      });
      var visible = [];
      Array.prototype.forEach.call(board.tBodies[0].rows, function (r) {
        var hide = (f.family && r.getAttribute("data-family").toLowerCase() !== f.family) ||
                   (f.kind && r.getAttribute("data-kind").toLowerCase() !== f.kind) ||
                   (f.text && r.getAttribute("data-text").toLowerCase().indexOf(f.text) < 0);
        r.hidden = !!hide;
        if (!hide) visible.push(r);
      });
      recomputeRanks(board, visible);
      var count = document.getElementById("row-count");
      if (count) count.textContent = visible.length + " of " + board.tBodies[0].rows.length + " rows";
    }
    Array.prototype.forEach.call(controls, function (c) {
      c.addEventListener(c.tagName === "INPUT" ? "input" : "change", apply);
    });
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () { initSorting(); initFilters(); });
})();
