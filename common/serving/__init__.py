"""How a function is served, in its container and under the local runtime alike
(`python -m common.serving`, functions-framework's options: serve.py). The CloudEvents
functions run on uvicorn in one process (asgi_app.py, event_server.py, uvicorn_server.py);
the api keeps functions-framework's gunicorn and Flask (wsgi.py). Both answer the Knative
probes (probes.py), render a common.problems.Problem as RFC 9457 problem+json, and warm up
the process's resources (its main.py's `resources`) as soon as they serve."""
