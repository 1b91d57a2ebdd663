// The editor's canvas (templates/pipelines/editor.html, #canvas), drawn with the vendored Drawflow
// (static/vendor/drawflow-0.0.60, MIT; docs/editor.md says why this library).
//
// It keeps no state of its own: it is drawn from the draft's definition (data-graph, made by
// pipelines/canvas.py), and every action is one of the editor's ordinary requests, sent with htmx:
// connecting two ports adds an edge (a ROUTE step's port carries its branch), removing a connection or a
// step removes it, a palette entry dropped on the canvas opens the new-step form beside it. The server
// validates each change and redraws the workspace, which draws the canvas again; a refused change draws it
// again from the unchanged draft, so the canvas never shows what the draft does not hold. A minimap in
// its corner shows the whole graph with the part in view marked; clicking or dragging on it moves the view.
(function () {
  "use strict";

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value;
    return span.innerHTML;
  }

  function slug(key) {
    return key.replace(/[^A-Za-z0-9_-]/g, "-");
  }

  function nodeHtml(node) {
    return '<div class="canvas-node-title">' + text(node.name) + "</div>" +
      '<div class="canvas-node-sub">' + text(node.type + (node.adapter ? " · " + node.adapter : "")) + "</div>";
  }

  function post(url, values) {
    return htmx.ajax("POST", url, { target: "#workspace", swap: "outerHTML", values: values });
  }

  // The palette entry being dragged (its URL): set when a drag starts, whatever the drag carries.
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var item = event.target.closest ? event.target.closest(".palette-item") : null;
    dragged = item ? item.getAttribute("hx-get") : null;
  });
  document.addEventListener("dragend", function () { window.setTimeout(function () { dragged = null; }, 0); });

  function Canvas(container) {
    this.container = container;
    this.graph = JSON.parse(container.dataset.graph);
    this.side = document.getElementById("canvas-side");
    this.editor = new Drawflow(container);
    this.editor.reroute = false;
    this.editor.start();
    this.minimap = new Minimap(this);
    this.draw();
    this.listen();
  }

  Canvas.prototype.draw = function () {
    var self = this;
    var editor = this.editor;
    this.loading = true;  // addConnection and clear dispatch events too: they are not the person's actions
    editor.clear();
    this.ids = {};
    this.keys = {};
    this.graph.nodes.forEach(function (node) {
      var id = editor.addNode(node.key, node.inputs, node.outputs.length, node.x, node.y,
                              "canvas-node", { key: node.key }, nodeHtml(node));
      self.ids[node.key] = id;
      self.keys[id] = node;
      var element = document.getElementById("node-" + id);
      element.dataset.step = node.key;
      element.querySelector(".drawflow_content_node").style.borderLeftColor = node.colour;
      node.outputs.forEach(function (port, i) {
        var output = element.querySelector(".outputs .output_" + (i + 1));
        output.dataset.branch = port.branch === null ? "" : port.branch;
        if (port.label) {
          output.setAttribute("title", port.label);
          var label = document.createElement("span");
          label.className = "port-label";
          label.textContent = port.label;
          output.appendChild(label);
        }
      });
    });
    this.graph.edges.forEach(function (edge) {
      var from = self.keys[self.ids[edge.from]];
      if (!from || !self.ids[edge.to]) return;
      var port = from.outputs.findIndex(function (p) { return p.branch === (edge.branch || null); });
      if (port < 0) port = 0;
      editor.addConnection(self.ids[edge.from], self.ids[edge.to], "output_" + (port + 1), "input_1");
    });
    this.loading = false;
    this.minimap.update();
  };

  Canvas.prototype.redraw = function () {
    if (document.body.contains(this.container)) this.draw();
  };

  Canvas.prototype.listen = function () {
    var self = this;
    var editor = this.editor;
    var data = this.container.dataset;

    // Drawflow takes Delete from the canvas's key events, but a press on a connection does not focus the
    // canvas (it prevents the default): without this, a connection selected right after typing in the
    // form beside the canvas could not be deleted with the key.
    editor.on("connectionSelected", function () { self.container.focus({ preventScroll: true }); });

    editor.on("translate", function (pan) { self.minimap.update(pan); });
    editor.on("zoom", function () { self.minimap.update(); });
    editor.on("mouseUp", function () { self.minimap.update(); });
    editor.on("mouseMove", function () { if (editor.drag) self.minimap.update(); });

    editor.on("connectionCreated", function (c) {
      if (self.loading) return;
      var from = self.keys[c.output_id];
      var to = self.keys[c.input_id];
      var port = from.outputs[Number(c.output_class.replace("output_", "")) - 1];
      post(data.edgeUrl, { from: from.key, to: to.key, branch: port && port.branch ? port.branch : "" })
        .then(function () { self.redraw(); });
    });

    editor.on("connectionRemoved", function (c) {
      if (self.loading) return;
      var from = self.keys[c.output_id];
      var to = self.keys[c.input_id];
      var port = from.outputs[Number(c.output_class.replace("output_", "")) - 1];
      var edge = self.graph.edges.find(function (e) {
        return e.from === from.key && e.to === to.key && (e.branch || null) === (port ? port.branch : null);
      });
      if (!edge || edge.index === null) {  // list order is not an edge to remove: draw it again
        self.redraw();
        return;
      }
      post(data.edgeRemoveUrl.replace(/\/0\/remove\/$/, "/" + edge.index + "/remove/"), {})
        .then(function () { self.redraw(); });
    });

    editor.on("nodeRemoved", function (id) {
      if (self.loading) return;
      var node = self.keys[id];
      if (!node) return;
      post(data.stepRemoveUrl.replace("__key__", encodeURIComponent(node.key)), {})
        .then(function () { self.redraw(); });
    });

    // A selected step's card moves beside the canvas (the same form, with what was typed into it).
    editor.on("nodeSelected", function (id) {
      var node = self.keys[id];
      var card = node && document.getElementById("card-" + slug(node.key));
      if (!card || !self.side) return;
      self.putBack();
      self.placeholder = document.createComment("card");
      card.parentNode.insertBefore(self.placeholder, card);
      self.moved = card;
      card.open = true;
      self.side.replaceChildren(card);
    });

    // Palette entries are links; dropped on the canvas they open the new-step form beside it.
    this.container.addEventListener("dragover", function (event) {
      if (dragged) event.preventDefault();
    });
    this.container.addEventListener("drop", function (event) {
      if (!dragged) return;
      event.preventDefault();
      var url = dragged;
      dragged = null;
      self.putBack();
      htmx.ajax("GET", url, { target: "#canvas-side", swap: "innerHTML" });
    });
  };

  Canvas.prototype.putBack = function () {
    if (this.moved && this.placeholder && this.placeholder.parentNode) {
      this.placeholder.parentNode.replaceChild(this.moved, this.placeholder);
    }
    this.moved = this.placeholder = null;
  };

  // Fit: the whole graph in view. The canvas scales about its centre, so the translation that brings the
  // graph's centre to the canvas's centre is (centre - graph centre) * zoom.
  Canvas.prototype.fit = function () {
    var editor = this.editor;
    var nodes = this.container.querySelectorAll(".drawflow-node");
    if (!nodes.length) return;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    nodes.forEach(function (n) {
      minX = Math.min(minX, n.offsetLeft);
      minY = Math.min(minY, n.offsetTop);
      maxX = Math.max(maxX, n.offsetLeft + n.offsetWidth);
      maxY = Math.max(maxY, n.offsetTop + n.offsetHeight);
    });
    var w = this.container.clientWidth, h = this.container.clientHeight;
    // Never below half size: past that the labels cannot be read, and panning shows the rest.
    var zoom = Math.max(0.5, Math.min(1.2, (w - 60) / (maxX - minX), (h - 40) / (maxY - minY)));
    editor.zoom = editor.zoom_last_value = zoom;
    this.centreOn((minX + maxX) / 2, (minY + maxY) / 2);
  };

  // The view centred on the canvas point (x, y), at the current zoom: the canvas scales about its centre
  // c, so a point p shows at c + (p - c) * zoom + translation, which is c when translation = (c - p) * zoom.
  Canvas.prototype.centreOn = function (x, y) {
    var editor = this.editor;
    var w = this.container.clientWidth, h = this.container.clientHeight;
    editor.canvas_x = (w / 2 - x) * editor.zoom;
    editor.canvas_y = (h / 2 - y) * editor.zoom;
    editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + editor.zoom + ")";
    this.minimap.update();
  };

  // The part of the canvas in view, in canvas coordinates (the inverse of the transform above); while the
  // background is dragged Drawflow moves the view before it updates canvas_x/y, so ``pan`` overrides them.
  Canvas.prototype.viewport = function (pan) {
    var editor = this.editor;
    var w = this.container.clientWidth, h = this.container.clientHeight, z = editor.zoom;
    var tx = pan ? pan.x : editor.canvas_x, ty = pan ? pan.y : editor.canvas_y;
    return { x: w / 2 + (-w / 2 - tx) / z, y: h / 2 + (-h / 2 - ty) / z, width: w / z, height: h / z };
  };

  // The minimap: the whole graph small, in the canvas's bottom right corner, with the part in view marked;
  // a click or a drag on it centres the view there. An SVG drawn with DOM calls (no markup, no inline
  // style), redrawn when the graph is drawn, panned, zoomed or a node is moved.
  var SVG = "http://www.w3.org/2000/svg";

  function Minimap(canvas) {
    this.canvas = canvas;
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.setAttribute("class", "canvas-minimap");
    this.svg.setAttribute("role", "img");
    this.svg.setAttribute("aria-label", "Overview of the whole graph; click or drag to move the view");
    canvas.container.appendChild(this.svg);
    this.listen();
  }

  Minimap.prototype.update = function (pan) {
    var canvas = this.canvas, svg = this.svg;
    var boxes = [];
    canvas.container.querySelectorAll(".drawflow-node").forEach(function (n) {
      boxes.push({ key: n.dataset.step, x: n.offsetLeft, y: n.offsetTop, w: n.offsetWidth, h: n.offsetHeight,
                   colour: (canvas.keys[n.id.slice(5)] || {}).colour });
    });
    var view = canvas.viewport(pan);
    var minX = view.x, minY = view.y, maxX = view.x + view.width, maxY = view.y + view.height;
    boxes.forEach(function (b) {
      minX = Math.min(minX, b.x); minY = Math.min(minY, b.y);
      maxX = Math.max(maxX, b.x + b.w); maxY = Math.max(maxY, b.y + b.h);
    });
    var pad = 20;
    // While the pointer drags on it the map keeps its scale, so the view follows the pointer steadily.
    if (!this.dragging) {
      svg.setAttribute("viewBox", [minX - pad, minY - pad, maxX - minX + 2 * pad, maxY - minY + 2 * pad].join(" "));
    }
    svg.replaceChildren();
    var at = {};
    boxes.forEach(function (b) { at[b.key] = b; });
    (canvas.graph.edges || []).forEach(function (e) {
      var from = at[e.from], to = at[e.to];
      if (!from || !to) return;
      var line = document.createElementNS(SVG, "line");
      line.setAttribute("class", "minimap-edge");
      line.setAttribute("x1", from.x + from.w); line.setAttribute("y1", from.y + from.h / 2);
      line.setAttribute("x2", to.x); line.setAttribute("y2", to.y + to.h / 2);
      svg.appendChild(line);
    });
    boxes.forEach(function (b) {
      var rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("class", "minimap-node");
      rect.setAttribute("x", b.x); rect.setAttribute("y", b.y);
      rect.setAttribute("width", b.w); rect.setAttribute("height", b.h);
      rect.setAttribute("rx", 8);
      rect.setAttribute("fill", b.colour || "#64748b");
      rect.dataset.step = b.key;
      svg.appendChild(rect);
    });
    var frame = document.createElementNS(SVG, "rect");
    frame.setAttribute("class", "minimap-view");
    frame.setAttribute("x", view.x); frame.setAttribute("y", view.y);
    frame.setAttribute("width", view.width); frame.setAttribute("height", view.height);
    svg.appendChild(frame);
  };

  // Where on the canvas a pointer on the minimap points (the SVG's own coordinates are the canvas's).
  Minimap.prototype.pointAt = function (event) {
    var point = this.svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(this.svg.getScreenCTM().inverse());
  };

  Minimap.prototype.listen = function () {
    var self = this, svg = this.svg;
    function move(event) {
      var p = self.pointAt(event);
      self.canvas.centreOn(p.x, p.y);
    }
    // Drawflow listens on the canvas around the minimap: a press here must not start a pan or a selection.
    ["mousedown", "mousemove", "mouseup", "touchstart", "touchmove", "wheel", "dblclick", "contextmenu"].forEach(
      function (name) { svg.addEventListener(name, function (event) { event.stopPropagation(); }); });
    svg.addEventListener("pointerdown", function (event) {
      event.stopPropagation();
      event.preventDefault();
      self.dragging = true;
      svg.setPointerCapture(event.pointerId);
      move(event);
    });
    svg.addEventListener("pointermove", function (event) {
      event.stopPropagation();
      if (self.dragging) move(event);
    });
    function stop(event) {
      event.stopPropagation();
      self.dragging = false;
      self.update();
    }
    svg.addEventListener("pointerup", stop);
    svg.addEventListener("pointercancel", stop);
  };

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-canvas]") : null;
    var canvas = document.getElementById("canvas");
    if (!button || !canvas || !canvas.canvas) return;
    var c = canvas.canvas;
    var action = button.dataset.canvas;
    if (action === "zoom-in") c.editor.zoom_in();
    else if (action === "zoom-out") c.editor.zoom_out();
    else if (action === "fit") c.fit();
    else if (action === "layout") { c.editor.zoom_reset(); c.draw(); c.fit(); }
  });

  htmx.onLoad(function (root) {
    var container = root.id === "canvas" ? root : (root.querySelector ? root.querySelector("#canvas") : null);
    if (container && !container.canvas && window.Drawflow) {
      container.canvas = new Canvas(container);
      container.canvas.fit();
    }
  });
})();
