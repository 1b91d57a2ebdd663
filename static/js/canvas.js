// The editor's canvas (templates/pipelines/editor.html, #canvas), drawn with the vendored Drawflow
// (static/vendor/drawflow-0.0.60, MIT; docs/editor.md says why this library).
//
// It keeps no state of its own: it is drawn from the draft's definition (data-graph, made by
// pipelines/canvas.py), and every action is one of the editor's ordinary requests, sent with htmx:
// connecting two ports adds an edge (a ROUTE step's port carries its branch), removing a connection or a
// step removes it, a palette entry dropped on the canvas opens the new-step form beside it. The server
// validates each change and redraws the workspace, which draws the canvas again; a refused change draws it
// again from the unchanged draft, so the canvas never shows what the draft does not hold.
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
  };

  Canvas.prototype.redraw = function () {
    if (document.body.contains(this.container)) this.draw();
  };

  Canvas.prototype.listen = function () {
    var self = this;
    var editor = this.editor;
    var data = this.container.dataset;

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
    editor.canvas_x = (w / 2 - (minX + maxX) / 2) * zoom;
    editor.canvas_y = (h / 2 - (minY + maxY) / 2) * zoom;
    editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + zoom + ")";
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
