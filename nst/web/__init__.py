"""The web page (``nst serve``): one static page and a small JSON API.

app (the HTTP routes, FastAPI, imported only by ``nst serve``), sessions (each
browser's uploads, capped and expired), jobs (a run's state and results) and queue
(fast requests served between the steps of a long optimisation).
"""
