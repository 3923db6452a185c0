"""AutoGLM text plugins. The specs that entry points name are in :mod:`autoglm_text.specs`."""
