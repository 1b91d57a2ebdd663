// Loaded by every page (base.html). The Content-Security-Policy refuses style="" attributes, so sizes that
// depend on data (progress bars) come as data-width="<percent>" and are set here through the CSSOM, which
// the policy allows; htmx.onLoad runs for the page and again for every fragment htmx swaps in.
htmx.onLoad(function (root) {
  var elements = root.querySelectorAll ? root.querySelectorAll("[data-width]") : [];
  for (var i = 0; i < elements.length; i++) {
    elements[i].style.width = elements[i].getAttribute("data-width") + "%";
  }
  if (root.hasAttribute && root.hasAttribute("data-width")) {
    root.style.width = root.getAttribute("data-width") + "%";
  }
});
