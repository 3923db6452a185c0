"""autoglm-multimodal: multimodal data sources. Entry points name :mod:`autoglm_multimodal.specs`."""
