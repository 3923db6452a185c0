"""autoglm-graph: graph data, graph builders, GNN reasoners and decoders on PyTorch Geometric.

The entry points name :mod:`autoglm_graph.specs` (light: no torch). Specs live
in their own module, not here, because a package attribute named like a
submodule (``gcn`` the spec, ``gcn.py`` the model) is replaced by that
submodule as soon as it is imported.
"""
