// The pipeline editor (templates/pipelines/editor.html). Panels save themselves into the person's draft as
// they type: each has an htmx element [data-autosave] that posts its form, debounced. This file makes sure
// that nothing typed is lost in between:
// - a request that redraws the whole workspace (add, move, remove a step, connections) waits until every
//   panel with unsaved typing has been saved ("draft-flush"), so the redraw shows it again;
// - Publish waits for the same, so the revision holds what is on the screen, and so does the step tester
//   ([data-flush-first]), so it tests the step as the card shows it;
// - leaving the page with unsaved typing or an unpublished draft asks first (beforeunload).
(function () {
  "use strict";
  var leaving = false;

  function saverOf(element) {
    var form = element && element.closest ? element.closest("form") : null;
    return form ? form.querySelector("[data-autosave]") : null;
  }

  function dirtySavers() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-autosave].is-dirty"));
  }

  // Typing marks the panel dirty until a save that started after the last keystroke has succeeded.
  function mark(event) {
    var saver = saverOf(event.target);
    if (!saver || event.target === saver) return;
    saver.dataset.edits = String((Number(saver.dataset.edits) || 0) + 1);
    saver.classList.add("is-dirty");
  }
  document.addEventListener("input", mark, true);
  document.addEventListener("change", mark, true);

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.hasAttribute && elt.hasAttribute("data-autosave")) elt.dataset.sent = elt.dataset.edits || "0";
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.hasAttribute && elt.hasAttribute("data-autosave") && event.detail.successful &&
        elt.dataset.sent === (elt.dataset.edits || "0")) {
      elt.classList.remove("is-dirty");
    }
  });

  // Save every dirty panel, then call done (also when a save failed: the request it was holding up goes on).
  function flush(done) {
    var savers = dirtySavers();
    var left = savers.length;
    if (!left) return false;
    savers.forEach(function (saver) {
      // This listener runs before the document's, which marks the panel clean: go on after both.
      saver.addEventListener("htmx:afterRequest", function () {
        left -= 1;
        if (left === 0) window.setTimeout(done, 0);
      }, { once: true });
      htmx.trigger(saver, "draft-flush");
    });
    return true;
  }

  document.addEventListener("htmx:confirm", function (event) {
    var detail = event.detail;
    if (detail.elt.hasAttribute("data-autosave")) return;
    var redraws = detail.target && detail.target.id === "workspace";
    if (!redraws && !detail.elt.closest("[data-flush-first]")) return;
    if (flush(function () { detail.issueRequest(); })) event.preventDefault();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-leaves-editor")) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    // The saves redraw the draft status only, so the form and its button are still the ones in the page.
    var submitter = event.submitter;
    if (flush(function () { form.requestSubmit(submitter); })) {
      event.preventDefault();
      return;
    }
    leaving = true;
  });

  window.addEventListener("beforeunload", function (event) {
    if (leaving) return;
    var bar = document.getElementById("draft-status");
    if (dirtySavers().length || (bar && bar.dataset.dirty === "1")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // A step in the graph links to its card: open the card, not only scroll to it.
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href^='#card-']") : null;
    var card = link ? document.getElementById(link.getAttribute("href").slice(1)) : null;
    if (card && card.tagName === "DETAILS") card.open = true;
  });
})();
