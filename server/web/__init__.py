"""The store page: a web app served by the store server (Starlette + Jinja2 + uvicorn).

Associates see live alerts and resolve them, managers see freezers, doors and the store's own
figures, technicians see devices.  See docs/store-page.md.
"""
