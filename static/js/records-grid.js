// A small grid over a JSON textarea of inline records (textarea[data-records-grid], the inMemory
// extractor's `data`): a row per record, a column per field, + row, + column, remove a row. The textarea
// stays the value the form posts: every edit in the grid writes the records back into it as JSON and fires
// "input", so the card saves itself into the draft as typing in it does.
//
// A cell reads as JSON when it is JSON (42, true, null, [1, 2]) and as text otherwise; a text cell that would
// read as something else is shown quoted ("42"). Records that are not flat objects (nested objects or
// lists of objects) get no grid: the JSON is edited as it is.
(function () {
  "use strict";

  function isScalar(v) {
    return v === null || ["string", "number", "boolean"].indexOf(typeof v) >= 0;
  }

  function show(v) {
    if (typeof v === "string") {
      try { JSON.parse(v); return JSON.stringify(v); } catch (e) { return v; }
    }
    return v === undefined ? "" : JSON.stringify(v);
  }

  function read(text) {
    if (text === "") return undefined;
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  function parse(textarea) {
    var text = textarea.value.trim();
    if (!text) return [];
    var records;
    try { records = JSON.parse(text); } catch (e) { return null; }
    if (!Array.isArray(records)) records = [records];
    for (var i = 0; i < records.length; i++) {
      var r = records[i];
      if (!r || typeof r !== "object" || Array.isArray(r)) return null;
      for (var k in r) { if (!isScalar(r[k]) && !(Array.isArray(r[k]) && r[k].every(isScalar))) return null; }
    }
    return records;
  }

  function Grid(textarea) {
    this.textarea = textarea;
    this.box = document.createElement("div");
    this.box.className = "records-grid";
    textarea.parentNode.insertBefore(this.box, textarea);
    this.render();
  }

  Grid.prototype.columns = function (records) {
    var cols = [];
    records.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0) cols.push(k); }); });
    return cols;
  };

  Grid.prototype.render = function () {
    var self = this;
    var records = parse(this.textarea);
    this.box.replaceChildren();
    if (records === null) {
      this.box.hidden = true;
      return;
    }
    this.box.hidden = false;
    this.cols = this.cols && this.cols.length >= this.columns(records).length ? this.cols : this.columns(records);
    var table = document.createElement("table");
    table.className = "table compact";
    var head = table.createTHead().insertRow();
    this.cols.forEach(function (col, c) {
      var th = document.createElement("th");
      var input = document.createElement("input");
      input.value = col;
      input.setAttribute("aria-label", "Column " + (c + 1) + " name");
      input.dataset.col = c;
      th.appendChild(input);
      head.appendChild(th);
    });
    head.appendChild(document.createElement("th"));
    var body = table.createTBody();
    records.forEach(function (record, r) {
      var row = body.insertRow();
      self.cols.forEach(function (col, c) {
        var input = document.createElement("input");
        input.value = show(record[col]);
        input.setAttribute("aria-label", "Record " + (r + 1) + " " + col);
        input.dataset.row = r;
        input.dataset.col = c;
        row.insertCell().appendChild(input);
      });
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn small icon danger";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", "Remove record " + (r + 1));
      remove.dataset.remove = r;
      row.insertCell().appendChild(remove);
    });
    this.box.appendChild(table);
    var tools = document.createElement("div");
    tools.className = "add-row";
    [["+ Record", "row"], ["+ Column", "col"]].forEach(function (b) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn small";
      button.textContent = b[0];
      button.dataset.add = b[1];
      tools.appendChild(button);
    });
    this.box.appendChild(tools);
    this.box.oninput = function () { self.write(); };
    this.box.onclick = function (event) {
      var t = event.target;
      if (t.dataset.add === "row") { self.write([{}]); self.render(); self.focusLast(); }
      else if (t.dataset.add === "col") { self.write(); self.cols.push("field" + (self.cols.length + 1)); self.render(); }
      else if (t.dataset.remove !== undefined) { self.write(null, Number(t.dataset.remove)); self.render(); }
    };
  };

  Grid.prototype.focusLast = function () {
    var cells = this.box.querySelectorAll("tbody input");
    if (cells.length) cells[cells.length - this.cols.length].focus();
  };

  // The grid's records into the textarea (plus ``extra`` new records, minus the record ``drop``).
  Grid.prototype.write = function (extra, drop) {
    var names = Array.prototype.map.call(this.box.querySelectorAll("thead input"), function (i) { return i.value; });
    this.cols = names;
    var records = [];
    this.box.querySelectorAll("tbody tr").forEach(function (tr, r) {
      if (r === drop) return;
      var record = {};
      tr.querySelectorAll("input").forEach(function (input) {
        var name = names[Number(input.dataset.col)];
        var value = read(input.value);
        if (name && value !== undefined) record[name] = value;
      });
      records.push(record);
    });
    records = records.concat(extra || []);
    this.textarea.value = JSON.stringify(records, null, 2);
    this.writing = true;  // the textarea's own listener must not redraw the grid being typed in
    this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
    this.writing = false;
  };

  htmx.onLoad(function (root) {
    var areas = root.querySelectorAll ? root.querySelectorAll("textarea[data-records-grid]") : [];
    areas.forEach(function (textarea) {
      if (textarea.grid) return;
      textarea.grid = new Grid(textarea);
      // Typing JSON by hand draws the grid again once typing pauses (not on "change": a grid drawn while
      // the pointer moves to a button would move the button away from under it).
      var timer = null;
      textarea.addEventListener("input", function () {
        if (textarea.grid.writing) return;
        window.clearTimeout(timer);
        timer = window.setTimeout(function () { textarea.grid.cols = null; textarea.grid.render(); }, 400);
      });
    });
  });
})();
