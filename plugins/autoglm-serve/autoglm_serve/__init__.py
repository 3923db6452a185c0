"""AutoGLM SDK serving: built artifacts behind an HTTP API (see :mod:`autoglm_serve.server`)."""
