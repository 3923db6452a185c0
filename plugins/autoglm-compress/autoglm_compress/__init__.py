"""AutoGLM SDK compressors."""
