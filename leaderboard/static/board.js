/* biasboard pages: sortable tables, CSV download of every table, overview filters whose state lives in the URL,
   and the win-rate order recomputed over what is visible. Plain JavaScript, no libraries, works from file://.
   Cells carry data-sort (numbers sort numerically, blanks always last); metric cells sort by distance from the
   ideal, so ascending = best first. */
(function () {
  "use strict";
  var TIERS = ["ok", "not_measured", "degenerate"];
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function sortValue(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (raw === "") return null;
    if (numeric) { var x = parseFloat(raw); return isNaN(x) ? null : x; }
    return raw.toLowerCase();
  }

  function sortTable(table, th, ascending) {
    var headers = Array.prototype.slice.call(th.parentNode.children);
    var index = headers.indexOf(th);
    var numeric = th.getAttribute("data-type") === "num";
    if (ascending === undefined) ascending = th.getAttribute("aria-sort") !== "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r) { if (r._pos === undefined) r._pos = r.rowIndex; });
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

  /* ---- CSV: the visible rows and columns of a table; cells with data-csv give several fields ---- */
  function csvField(v) {
    if (v === null || v === undefined) return "";
    var s = String(v);
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function visible(el) { return !el.hidden && !el.classList.contains("hidden-col") && !el.classList.contains("empty-col"); }
  function tableCsv(table) {
    var heads = Array.prototype.filter.call(table.tHead.rows[0].cells, visible);
    var header = [];
    heads.forEach(function (th) {
      var multi = th.getAttribute("data-csv-head");
      if (multi) header = header.concat(JSON.parse(multi));
      else header.push(th.textContent.replace(/\s+/g, " ").trim());
    });
    var lines = [header.map(csvField).join(",")];
    each(table.tBodies[0].rows, function (r) {
      if (r.hidden) return;
      var out = [];
      Array.prototype.filter.call(r.cells, visible).forEach(function (td, i) {
        var multi = heads[i] && heads[i].getAttribute("data-csv-head");
        if (multi) {
          var vals = JSON.parse(td.getAttribute("data-csv") || "[]");
          for (var k = 0; k < JSON.parse(multi).length; k++) out.push(vals[k] === undefined ? null : vals[k]);
        } else out.push(td.textContent.replace(/\s+/g, " ").trim());
      });
      lines.push(out.map(csvField).join(","));
    });
    return lines.join("\n") + "\n";
  }
  function addCsvButton(table, n) {
    var name = table.getAttribute("data-csv-name") ||
      (document.body.getAttribute("data-page") || "table") + "-" + (n + 1) + ".csv";
    var btn = document.createElement("button");
    btn.type = "button"; btn.className = "csv"; btn.textContent = "CSV";
    btn.title = "download the rows shown as " + name;
    btn.addEventListener("click", function () {
      var url = URL.createObjectURL(new Blob([tableCsv(table)], { type: "text/csv" }));
      var a = document.createElement("a");
      a.href = url; a.download = name; document.body.appendChild(a); a.click();
      setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
    });
    var wrap = table.parentNode.classList.contains("table-wrap") ? table.parentNode : table;
    wrap.parentNode.insertBefore(btn, wrap);
  }

  function initTables() {
    each(document.querySelectorAll("table.sortable"), function (table, n) {
      if (!table.tHead) return;
      addCsvButton(table, n);
      each(table.tHead.querySelectorAll("th[data-type]"), function (th) {
        th.tabIndex = 0;
        var go = function () { sortTable(table, th); if (table.id === "board") saveState(); };
        th.addEventListener("click", function (ev) { if (ev.target.tagName !== "A") go(); });
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
        });
      });
    });
  }

  /* ---- win rate over visible rows and bias columns: same rule and rounding as leaderboard/ranking.py ---- */
  function roundHalfUp(x) { return Math.floor(x * 10 + 0.5) / 10; }
  function recomputeRanks(board, rows) {
    var minShared = parseInt(board.getAttribute("data-min-shared"), 10) || 2;
    var cols = Array.prototype.filter.call(board.tHead.querySelectorAll('th[data-col][data-role="bias"]'), visible)
      .map(function (th) { return th.getAttribute("data-col"); });
    var bad = rows.map(function (r) {
      return cols.map(function (col) {
        var td = r.querySelector('td[data-col="' + cssEscape(col) + '"]');
        var v = td ? td.getAttribute("data-badness") : "";
        return v === null || v === "" ? null : parseFloat(v);
      });
    });
    rows.forEach(function (r, i) {
      var wins = 0, comps = 0, opp = 0;
      rows.forEach(function (_, j) {
        if (i === j) return;
        var shared = [];
        for (var c = 0; c < cols.length; c++) if (bad[i][c] !== null && bad[j][c] !== null) shared.push(c);
        if (shared.length < minShared) return;
        opp += 1;
        shared.forEach(function (c) { wins += bad[i][c] < bad[j][c] ? 1 : bad[i][c] === bad[j][c] ? 0.5 : 0; comps += 1; });
      });
      var rate = comps ? wins / comps : null;
      var key = TIERS.indexOf(r.getAttribute("data-tier")) * 1000 + (rate === null ? 500 : 100 - roundHalfUp(100 * rate));
      var td = r.querySelector("td.mean-rank");
      td.setAttribute("data-sort", String(key));
      td.querySelector(".mr").textContent = rate === null ? "\u2013" : roundHalfUp(100 * rate).toFixed(1) + "%";
      td.querySelector(".nr").textContent = "(" + opp + " \u00b7 " + comps + ")";
    });
  }

  function cssEscape(s) { return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/["\\]/g, "\\$&"); }

  /* ---- overview state in the URL hash: family, kind, axis, task, q, sort, dir ---- */
  var board, controls;
  function readState() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    var s = {};
    p.forEach(function (v, k) { s[k] = v; });
    return s;
  }
  function saveState() {
    if (!board) return;
    var p = new URLSearchParams();
    each(controls, function (c) { if (c.value.trim()) p.set(c.getAttribute("data-filter"), c.value.trim()); });
    var th = board.tHead.querySelector("th[aria-sort]");
    if (th && !(th.getAttribute("data-key") === "rank" && th.getAttribute("aria-sort") === "ascending")) {
      p.set("sort", th.getAttribute("data-key"));
      p.set("dir", th.getAttribute("aria-sort") === "ascending" ? "asc" : "desc");
    }
    var hash = p.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }

  function apply() {
    var f = {};
    each(controls, function (c) { f[c.getAttribute("data-filter")] = c.value.trim().toLowerCase(); });
    each(board.querySelectorAll("[data-col]"), function (el) {
      var hide = (f.axis && el.getAttribute("data-axis").toLowerCase() !== f.axis) ||
                 (f.task && el.getAttribute("data-task").toLowerCase() !== f.task);
      el.classList.toggle("hidden-col", !!hide);
      el.classList.remove("empty-col");
    });
    var words = (f.q || "").split(/\s+/).filter(Boolean);
    var rows = board.tBodies[0].rows, shown = [];
    each(rows, function (r) {
      var text = r.getAttribute("data-text").toLowerCase();
      var hide = (f.family && r.getAttribute("data-family").toLowerCase() !== f.family) ||
                 (f.kind && r.getAttribute("data-kind").toLowerCase() !== f.kind) ||
                 words.some(function (w) { return text.indexOf(w) < 0; });
      if (!hide) {  /* a row with no value in any visible column says nothing: hide it */
        hide = !Array.prototype.some.call(r.querySelectorAll("td[data-col]"), function (td) {
          return !td.classList.contains("hidden-col") && !td.classList.contains("empty");
        });
      }
      r.hidden = !!hide;
      if (!hide) shown.push(r);
    });
    /* columns with no value in any shown row are hidden too */
    each(board.tHead.querySelectorAll("th[data-col]"), function (th) {
      var col = cssEscape(th.getAttribute("data-col"));
      var any = shown.some(function (r) {
        var td = r.querySelector('td[data-col="' + col + '"]');
        return td && !td.classList.contains("empty");
      });
      if (!any && !th.classList.contains("hidden-col")) {
        each(board.querySelectorAll('[data-col="' + col + '"]'), function (el) { el.classList.add("empty-col"); });
      }
    });
    recomputeRanks(board, shown);
    var count = document.getElementById("row-count");
    if (count) count.textContent = shown.length + " of " + rows.length + " rows shown";
    var th = board.tHead.querySelector("th[aria-sort]");
    if (th) sortTable(board, th, th.getAttribute("aria-sort") === "ascending");
  }

  function initBoard() {
    board = document.getElementById("board");
    if (!board) return;
    controls = document.querySelectorAll("[data-filter]");
    var state = readState();
    each(controls, function (c) { var v = state[c.getAttribute("data-filter")]; if (v !== undefined) c.value = v; });
    var th = state.sort && board.tHead.querySelector('th[data-key="' + cssEscape(state.sort) + '"]');
    (th || board.tHead.querySelector('th[data-key="rank"]')).setAttribute("aria-sort", th && state.dir === "desc" ? "descending" : "ascending");
    each(controls, function (c) {
      c.addEventListener(c.tagName === "INPUT" ? "input" : "change", function () { apply(); saveState(); });
    });
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () { initTables(); initBoard(); });
})();
