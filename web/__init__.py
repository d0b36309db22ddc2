"""The read-only web gallery (`sojourn web`): FastAPI routes over the gallery service, Jinja pages.

It reads the database and the image files and writes nothing; every result it shows or serves
passes `sojourn.services.gallery.visible_in_gallery` (pages) or `can_see` (a result, its files).
"""
