"""AutoGLM SDK language-model plugins: the ``causal-lm`` decoder (see :mod:`autoglm_lm.causal_lm`)."""
