"""keyart's image service: an HTTP front end of the render queue (FastAPI on uvicorn).

`imagegen.server.app.create_app(queue)` builds the app; `python -m imagegen serve` runs it. This
package's __init__ imports nothing, so `import imagegen.server.limits` stays light.
"""
