"""`skinctl serve`: the analyze-condition HTTP API (FastAPI on uvicorn), request batching,
API keys and Prometheus metrics. Imports services, never commands or the TUI.

FastAPI, uvicorn and TensorFlow are imported only by `skinctl.serve.app` and
`skinctl.serve.models`, so `skinctl.serve.keys` stays cheap for `skinctl api-key`."""
