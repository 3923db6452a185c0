"""Plugin kinds and their entry-point groups. Imports nothing, so discovery stays cheap."""

#: Version of the contract suites in :mod:`autoglm_sdk.testing`. A plugin states
#: the version it was written against; the SDK refuses specs from a newer one.
CONTRACT_VERSION = 1

#: kind -> entry-point group. One group per kind; the entry-point name is the
#: plugin name and its value points at a :class:`~autoglm_sdk.protocols.PluginSpec`.
KIND_GROUPS: dict[str, str] = {
    "data": "autoglm.data_sources",
    "encoder": "autoglm.encoders",
    "graph_builder": "autoglm.graph_builders",
    "reasoner": "autoglm.reasoners",
    "decoder": "autoglm.decoders",
    "scheduler": "autoglm.schedulers",
    "compressor": "autoglm.compressors",
    "backend": "autoglm.backends",
    "objective": "autoglm.objectives",
}
KINDS = tuple(KIND_GROUPS)
