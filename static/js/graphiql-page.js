// Starts GraphiQL (vendored in static/vendor/) on the element #graphiql. The endpoint is this page's own
// URL; a browser POST carries the session cookie, so it needs the CSRF token like any form.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var fetcher = window.GraphiQL.createFetcher({
    url: root.dataset.endpoint,
    headers: { "X-CSRFToken": root.dataset.csrf },
  });
  window.ReactDOM.createRoot(root).render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    })
  );
})();
