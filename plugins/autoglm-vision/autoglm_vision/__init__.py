"""AutoGLM vision plugins. The specs that entry points name are in :mod:`autoglm_vision.specs`."""
