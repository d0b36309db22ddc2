"""One router per page group: the gallery's pages, a result's page, image files, the JSON API."""
