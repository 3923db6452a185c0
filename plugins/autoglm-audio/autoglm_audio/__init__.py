"""AutoGLM audio plugins. The specs that entry points name are in :mod:`autoglm_audio.specs`."""
