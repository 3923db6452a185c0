"""AutoGLM SDK hardware backends: cuda and npu."""
