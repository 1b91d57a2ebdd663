"""The pipeline pages, one concern per module; pipelines/urls.py maps each URL to its view.

:mod:`.listing` (the list, enable/disable, export), :mod:`.creating` (new, import, duplicate), the editor:
:mod:`.workspace` (the page and how it answers a change), :mod:`.attempts` (a panel's input tried against
the person's draft), :mod:`.steps`, :mod:`.connections`, :mod:`.settings` (its panels), :mod:`.publishing`
(publish, merge or discard the draft), :mod:`.revisions`, :mod:`.json_editor` (the definition as JSON);
:mod:`.common` holds the permissions every page checks.

Function-based views; one template per page, and an htmx request gets a named partial of that same
template.
"""
