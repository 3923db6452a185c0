"""Specs and configs of the autoglm-graph plugins.

This module is what the entry points name: specs and configs only, no torch.
Implementations live in the sibling modules and load when a pipeline uses them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autoglm_sdk.plugin import (
    BuildContext,
    PathField,
    PluginConfig,
    PluginSpec,
    Port,
    PortMismatch,
    TaskSpec,
    reasoner_signature,
    require_input,
)

# ---------------------------------------------------------------------- sbm


class SBMConfig(PluginConfig):
    """Stochastic block model: ``blocks`` communities; memory grows with the
    number of node pairs (dense sampling), so keep blocks * nodes_per_block
    below about 20,000 nodes."""

    blocks: int = Field(4, ge=2, le=64, description="Number of communities (= classes).")
    nodes_per_block: int = Field(150, ge=4, le=5000, description="Nodes in each community.")
    p_in: float = Field(0.05, ge=0, le=1, description="Edge probability inside a community.")
    p_out: float = Field(0.005, ge=0, le=1, description="Edge probability between communities.")
    feature_dim: int = Field(16, ge=1, le=4096, description="Node feature size.")
    feature_signal: float = Field(
        0.5,
        ge=0,
        description="Distance of each community's feature mean from the origin, in noise standard deviations.",
    )
    train_per_class: int = Field(20, ge=1, description="Labelled training nodes per community.")
    val_per_class: int = Field(30, ge=1, description="Validation nodes per community; the rest are test nodes.")

    @model_validator(mode="after")
    def _splits_fit(self) -> "SBMConfig":
        used = self.train_per_class + self.val_per_class
        if used >= self.nodes_per_block:
            raise ValueError(
                f"train_per_class + val_per_class ({used}) must be < nodes_per_block ({self.nodes_per_block}) "
                "so that every community keeps test nodes"
            )
        return self


sbm = PluginSpec(
    name="sbm",
    kind="data",
    config=SBMConfig,
    factory="autoglm_graph.sbm:SBMDataSource",
    summary="Seeded stochastic-block-model node classification (communities as labels).",
    signature=lambda cfg, ctx: Port("samples", frozenset({"graph"}), dim=cfg.feature_dim),
)

# --------------------------------------------------------------------- csbm


class CSBMConfig(PluginConfig):
    """Contextual stochastic block model: class-correlated features and a graph with a set edge homophily.
    Generation is linear in nodes * degree; the ``knn``/``adaptive`` builders over it cost nodes² / chunk
    similarity rows, so up to about 50,000 nodes stay comfortable on a CPU."""

    classes: int = Field(3, ge=2, le=64, description="Number of classes (= blocks).")
    nodes_per_class: int = Field(
        333, ge=10, le=1_000_000, description="Nodes in each class (the largest class, with `imbalance`)."
    )
    imbalance: float = Field(
        1.0,
        ge=1,
        le=1000,
        description="Largest to smallest class size: class c has nodes_per_class / imbalance**(c / (classes - 1)) "
        "nodes (1: equal classes).",
    )
    degree: int = Field(
        10, ge=0, le=1000, description="Mean degree of the true graph (undirected edges * 2 / nodes); 0: no graph."
    )
    homophily: float = Field(0.8, ge=0, le=1, description="Share of the true graph's edges inside a class.")
    rewire: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of edges given a uniformly random endpoint: the noisy graph the "
        "pipeline sees (the true graph travels as `true_edge_index`, for reports only).",
    )
    feature_dim: int = Field(50, ge=1, le=4096, description="Node feature size.")
    informative: int = Field(5, ge=1, description="Leading feature dimensions in which the class means differ.")
    feature_signal: float = Field(
        1.0, ge=0, description="Distance of each class mean from the origin, in noise standard deviations."
    )
    train_per_class: int = Field(20, ge=1, description="Labelled training nodes per class.")
    val_per_class: int = Field(30, ge=1, description="Validation nodes per class; the rest are test nodes.")
    label_rate: float | None = Field(
        None,
        gt=0,
        lt=0.5,
        description="Label this share of every class (at least one node) for training and as much again for "
        "validation, instead of train_per_class and val_per_class: scarce labels that follow the imbalance.",
    )
    split: int = Field(0, ge=0, description="Which seeded choice of labelled nodes (same graph for every split).")
    means_seed: int | None = Field(
        None,
        ge=0,
        description="Seed of the class means alone (default: the pipeline seed). Two graphs with one means_seed and "
        "different pipeline seeds share what features say about classes, not their nodes or edges: a related task "
        "to transfer to.",
    )

    def class_sizes(self) -> list[int]:
        steps = max(self.classes - 1, 1)
        return [max(round(self.nodes_per_class / self.imbalance ** (c / steps)), 1) for c in range(self.classes)]

    def labelled(self, size: int) -> tuple[int, int]:
        """(training, validation) nodes of a class of ``size`` nodes."""
        if self.label_rate is None:
            return self.train_per_class, self.val_per_class
        count = max(1, round(self.label_rate * size))
        return count, count

    @model_validator(mode="after")
    def _fits(self) -> "CSBMConfig":
        if self.informative > self.feature_dim:
            raise ValueError(f"informative ({self.informative}) must be <= feature_dim ({self.feature_dim})")
        smallest = min(self.class_sizes())
        used = sum(self.labelled(smallest))
        if used >= smallest:
            raise ValueError(
                f"the smallest class has {smallest} nodes, {used} of them labelled for training and validation: "
                "lower train_per_class/val_per_class (or label_rate), or raise nodes_per_class, so every class "
                "keeps test nodes"
            )
        return self


csbm = PluginSpec(
    name="csbm",
    kind="data",
    config=CSBMConfig,
    factory="autoglm_graph.csbm:CSBMDataSource",
    summary="Seeded contextual SBM node classification: set homophily, weakly informative features, random rewiring.",
    signature=lambda cfg, ctx: Port("samples", frozenset({"graph"}), dim=cfg.feature_dim),
)

# ------------------------------------------------------------ random-graphs


class RandomGraphsConfig(PluginConfig):
    """Synthetic graphs labelled by their structure. Generation and labels cost about nodes * degree per
    graph (average path length: nodes * edges), so graphs of up to a few thousand nodes and datasets of a
    few thousand graphs stay comfortable; memory is a list of small edge tensors."""

    generators: list[Literal["erdos_renyi", "watts_strogatz", "barabasi_albert", "sbm"]] = Field(
        default_factory=lambda: ["watts_strogatz"],
        min_length=1,
        description="Generators to draw from, in turn (task `generator`: one class each).",
    )
    task: Literal["node_clustering", "generator", "path_length"] = Field(
        "node_clustering",
        description="Node clustering coefficient in `bins` classes, which generator drew "
        "the graph, or the graph's average shortest-path length in `bins` classes.",
    )
    bins: int = Field(10, ge=2, le=100, description="Classes of a binned target (about equally many each).")
    features: Literal["constant", "degree"] = Field(
        "constant", description="Node features: a constant 1, or the one-hot degree."
    )
    max_degree: int = Field(32, ge=1, le=1024, description="Degree features: larger degrees share the last slot.")
    nodes: tuple[int, int] = Field((64, 64), description="Nodes per graph, drawn uniformly from this range.")
    train_graphs: int = Field(192, ge=1, le=1_000_000, description="Training graphs.")
    val_graphs: int = Field(32, ge=1, le=1_000_000, description="Validation graphs.")
    test_graphs: int = Field(32, ge=1, le=1_000_000, description="Test graphs.")
    er_p: tuple[float, float] = Field((0.05, 0.2), description="Erdős–Rényi edge probability range.")
    ws_k: tuple[int, int] = Field((4, 8), description="Watts–Strogatz ring neighbours range (even values).")
    ws_p: tuple[float, float] = Field((0.0, 0.6), description="Watts–Strogatz rewiring probability range.")
    ba_m: tuple[int, int] = Field((1, 4), description="Barabási–Albert edges per new node range.")
    sbm_blocks: tuple[int, int] = Field((2, 4), description="SBM block count range.")
    sbm_p_in: tuple[float, float] = Field((0.2, 0.4), description="SBM within-block edge probability range.")
    sbm_p_out: tuple[float, float] = Field((0.01, 0.05), description="SBM between-block edge probability range.")

    @model_validator(mode="after")
    def _ranges(self) -> "RandomGraphsConfig":
        for name in ("nodes", "er_p", "ws_k", "ws_p", "ba_m", "sbm_blocks", "sbm_p_in", "sbm_p_out"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: the low end {low} is above the high end {high}")
        if self.nodes[0] <= max(self.ws_k[1], self.ba_m[1]):
            raise ValueError(f"nodes ({self.nodes[0]}) must exceed ws_k and ba_m's high ends")
        if self.task == "generator" and len(self.generators) < 2:
            raise ValueError("task `generator` needs at least two generators to tell apart")
        return self


def _random_graphs_signature(cfg: RandomGraphsConfig, ctx: BuildContext) -> Port:
    return Port("samples", frozenset({"graph"}), dim=1 if cfg.features == "constant" else cfg.max_degree + 1)


random_graphs = PluginSpec(
    name="random-graphs",
    kind="data",
    config=RandomGraphsConfig,
    factory="autoglm_graph.generators:RandomGraphsDataSource",
    summary="Seeded Erdős–Rényi / Watts–Strogatz / Barabási–Albert / SBM graphs labelled by structure "
    "(clustering coefficient, generator, path length).",
    signature=_random_graphs_signature,
)

# ------------------------------------------------------------------ kinship


class KinshipSplit(PluginConfig):
    hops: list[int] = Field(
        description="Chain lengths (stated facts between the query pair) in this split.", min_length=1
    )
    stories: int = Field(
        description="Stories in this split, shared evenly between its hop counts (at most 1,000,000: about 1 ms each).",
        ge=1,
        le=1_000_000,
    )
    noise_facts: int | tuple[int, int] | None = Field(
        None,
        description="Distractor facts in this split's stories: a count, or [least, most] for a count drawn per "
        "story (unset: data.noise_facts). Distractors in training alone make stories of every length from short "
        "chains, for models that must learn to read past them.",
    )

    @model_validator(mode="after")
    def _hops_in_range(self) -> "KinshipSplit":
        bad = [h for h in self.hops if not 1 <= h <= 20]
        if bad:
            raise ValueError(f"hops must be between 1 and 20, got {bad}")
        noise = self.noise_facts
        least, most = (noise, noise) if isinstance(noise, int) else noise or (0, 0)
        if not 0 <= least <= most <= 10:
            raise ValueError(f"noise_facts must be a count or [least, most] within 0..10, got {noise}")
        return self


class KinshipConfig(PluginConfig):
    """Family stories generated from sampled trees; about 1 ms per story."""

    train: KinshipSplit = Field(
        default_factory=lambda: KinshipSplit(hops=[2, 3], stories=5000), description="Training split."
    )
    val: KinshipSplit = Field(
        default_factory=lambda: KinshipSplit(hops=[2, 3], stories=500), description="Validation split."
    )
    test: KinshipSplit = Field(
        default_factory=lambda: KinshipSplit(hops=list(range(2, 11)), stories=900), description="Test split."
    )
    generations: int = Field(4, ge=3, le=6, description="Generations in each sampled family tree.")
    max_children: int = Field(4, ge=2, le=6, description="Most children per couple (at least one each).")
    noise_facts: int = Field(0, ge=0, le=10, description="True facts about people off the chain, added as distractors.")
    balance_answers: bool = Field(
        True,
        description="Draw each story's answer type uniformly, then a chain composing to it, so that rare "
        "compositions (a child's spouse) are learned too; off: answers fall as freely drawn chains do.",
    )
    compose_further: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Share of stories of 3 hops or more whose chain goes on from a relative that composes further "
        "than their type (a husband's brother, then his son: a nephew; a father's sister, then her sister: an aunt). "
        "People write such chains often, and freely drawn chains almost never hold them.",
    )
    phrasings: Literal["classic", "bank"] = Field(
        "classic",
        description="classic: the five original fact templates and two questions, all of which text-relations "
        "reads; bank: every phrasing family of kinship_phrasings (pronouns, relatives described but not named, "
        "lists, two facts in one sentence, filler sentences). Samples always carry gold entities, mentions and "
        "facts for learned text-to-graph extractors.",
    )
    surnames: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of bank stories that name each person in full once ('Rosa Delgado's son ... Rosa'; a "
        "father's surname passes to his children). Off by default: at 0.25, fresh builds of "
        "examples/kinship-extractor.toml read held-out facts at F1 0.972 (seed 2; 0.964 without) and 0.948 (seed "
        "1; 0.974 without), and seed 2 answered fewer hand-written genealogy notes and letters.",
    )
    ask: Literal["relation", "person"] = Field(
        "relation",
        description="relation: the question asks how the target is related to the source (the label); person: "
        "it asks who the source's <relation> is ('Who is Anna's granddaughter?'), the sample's `answer` field holds "
        "the target's name, a span of the story (task extractive-qa), and only stories where nobody else is the "
        "source's <relation> are kept. Person questions are the classic phrasing's.",
    )
    phrasing_split: bool = Field(
        True,
        description="With phrasings = bank: train and test use the training families and questions, val the "
        "validation ones, and a fourth split `held-out-phrasing` (stories and hops as in test) only held-out ones. "
        "Off: every split samples every family and question, and there is no fourth split.",
    )


kinship = PluginSpec(
    name="kinship",
    kind="data",
    config=KinshipConfig,
    factory="autoglm_graph.kinship:KinshipDataSource",
    summary="Seeded stories about families grounded in sampled trees; how is the target related to the source?",
    signature=lambda cfg, ctx: Port("samples", frozenset({"text"}), edge_type_names=_kinship("TYPES")),
    capabilities=frozenset(),
)

# -------------------------------------------------------------------- jsonl


class JsonlConfig(PluginConfig):
    """Your own labelled texts, one JSON object per line."""

    path: str = PathField("", description="The JSON-lines file (a relative path is read from the manifest's folder).")
    text_field: str = Field("text", description="Field holding the text.")
    label_field: str = Field("label", description="Field holding the label (string or integer).")
    split_field: str | None = Field(
        "split", description="Field naming the split (train/val/test); none = split at random."
    )
    group_field: str | None = Field(None, description="Field to break test metrics down by (e.g. hops).")
    target_field: str | None = Field(
        None,
        description="Field holding each line's target text, copied into its sample under the same name, for "
        "[pipeline] task = generate or summarise (name it in [pipeline] target_field too); none = no target text.",
    )
    labels: list[str] = Field(
        default_factory=list, description="Label names in class order (default: sorted unique labels)."
    )
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Share of lines without a split that go to validation.")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="Share of lines without a split that go to test.")
    facts_field: str | None = Field(
        "facts",
        description="Optional field with the facts a text states, [[head, relation, tail], ...], read 'tail is "
        "head's relation'; learned graph builders train on them.",
    )
    query_field: str | None = Field("query", description="Optional field with the question's [target, source].")


jsonl = PluginSpec(
    name="jsonl",
    kind="data",
    config=JsonlConfig,
    factory="autoglm_graph.jsonl:JsonlDataSource",
    summary="Labelled texts from a JSON-lines file (your own data), with optional splits and groups.",
    signature=lambda cfg, ctx: Port("samples", frozenset({"text"})),
    # the file is the data: a seed only changes the random split of lines that name none
    capabilities=frozenset({"static"}),
)

# -------------------------------------------------------------------- table


class TableConfig(PluginConfig):
    """Your own rows as graph nodes (CSV, Parquet or NPZ), with an optional edge list and few labels per class."""

    path: str = PathField(
        "",
        description="The rows: .csv (header line first), .parquet (needs pyarrow) or .npz; relative to the manifest.",
    )
    label: str = Field("label", description="Column (or NPZ array) holding each row's class.")
    features: list[str] = Field(
        default_factory=list, description="Feature columns (default: every column but the label and id columns)."
    )
    features_key: str = Field("x", description="NPZ only: the array of features [rows, features].")
    id: str | None = Field(
        None, description="Column naming each row, as the edge list refers to it (default: row numbers from 0)."
    )
    edges: str = Field(
        "",
        description="Optional edge list: .csv with two columns (source, target) or .npz with "
        "edge_index [2, E]; without it the graph is empty (use knn or adaptive).",
    )
    undirected: bool = Field(True, description="Add the reverse of every listed edge.")
    train_per_class: int = Field(20, ge=1, description="Labelled training rows per class.")
    val_per_class: int = Field(30, ge=1, description="Validation rows per class; the rest are test rows.")
    split: int = Field(0, ge=0, description="Which seeded choice of labelled rows (compare several for the spread).")


def table_columns(cfg: TableConfig, header: list[str]) -> list[str]:
    """The feature columns of a table with these column names, or a DataError naming what is missing."""
    from autoglm_sdk.plugin import DataError

    missing = [name for name in [cfg.label, *([cfg.id] if cfg.id else []), *cfg.features] if name not in header]
    if missing:
        raise DataError(
            f"data: column(s) {', '.join(map(repr, missing))} not in {cfg.path} "
            f"(it has {', '.join(header[:12])}{'...' if len(header) > 12 else ''})"
        )
    names = cfg.features or [h for h in header if h not in (cfg.label, cfg.id)]
    if not names:
        raise DataError(f"data: {cfg.path} has no feature columns besides the label")
    return names


def _table_signature(cfg: TableConfig, ctx: BuildContext) -> Port:
    """The feature size from the file's header (CSV), schema (Parquet) or array shape (NPZ), without reading rows."""
    import csv
    from pathlib import Path

    path = Path(cfg.path)
    if not cfg.path or not path.is_file():
        raise PortMismatch(f"data.path: {cfg.path or '(empty)'} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as arrays:
            if cfg.features_key not in arrays.files:
                raise PortMismatch(f"data.path: {path.name} has no array `{cfg.features_key}`")
            shape = arrays[cfg.features_key].shape
        return Port("samples", frozenset({"graph"}), dim=int(shape[1]) if len(shape) == 2 else None)
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise PortMismatch(f"data.path: reading {path.name} needs pyarrow (pip install pyarrow)") from exc
        header = list(pq.read_schema(path).names)
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    else:
        raise PortMismatch(f"data.path: {path.name}: expected a .csv, .parquet or .npz file")
    return Port("samples", frozenset({"graph"}), dim=len(table_columns(cfg, header)))


table = PluginSpec(
    name="table",
    kind="data",
    config=TableConfig,
    factory="autoglm_graph.table:TableDataSource",
    summary="Your own rows as nodes (CSV/Parquet/NPZ features and label, optional edge list, few labels per class).",
    signature=_table_signature,
)

# ----------------------------------------------------------- text-relations


class RelationWord(PluginConfig):
    type: str = Field(description="Edge type the word stands for (one of edge_types).")
    gender: Literal["female", "male"] | None = Field(None, description="Gender the word reveals about its subject.")


def _kinship_words() -> dict[str, RelationWord]:
    from autoglm_graph import kinship_vocab as kv

    return {w: RelationWord(type=t, gender=g) for w, (t, g) in kv.WORD_MEANING.items()}


def _kinship(name: str):
    from autoglm_graph import kinship_vocab as kv

    return getattr(kv, name)


class TextRelationsConfig(PluginConfig):
    """Patterns use {subj} (the person the relation word describes), {obj}, {rel}
    (a relation word), {pron} (his/her), {any} (up to six words) and, in
    questions, {target} and {source}. Earlier patterns win where two overlap.
    The defaults are the kinship domain."""

    relations: dict[str, RelationWord] = Field(
        default_factory=_kinship_words, description="Relation word -> edge type and the gender it reveals."
    )
    edge_types: list[str] = Field(
        default_factory=lambda: list(_kinship("TYPES")), description="Edge type vocabulary, in id order.", min_length=1
    )
    inverse: dict[str, str] = Field(
        default_factory=lambda: dict(_kinship("INVERSE")), description="Edge type -> type of the reverse edge."
    )
    add_inverse_edges: bool = Field(True, description="Add the reverse of every stated fact with the inverse type.")
    fact_patterns: list[str] = Field(
        default_factory=lambda: [
            "{subj}, the {rel} of {obj},",
            "{obj}'s {rel}, {subj},",
            "{subj} is {obj}'s {rel}",
            "{obj}'s {rel} is {subj}",
            "{obj} has a {rel} named {subj}",
            "{obj} has a {rel} called {subj}",
            "{subj} is the {rel} of {obj}",
            "{subj} is a {rel} of {obj}",
            "{obj} has a {rel}, {subj}",
            "{obj} {any}with {pron} {rel} {subj}",
            "{obj} and {pron} {rel} {subj}",
            "{obj}'s {rel} {subj}",
        ],
        description="Fact sentence templates.",
        min_length=1,
    )
    query_patterns: list[str] = Field(
        default_factory=lambda: [
            "How is {target} related to {source}",
            "What is {target} to {source}",
            "Who is {target} to {source}",
            "What relation is {target} to {source}",
            "What is the relationship of {target} to {source}",
            "{target} is {source}'s what",
            "Who is {source}'s {rel}",
        ],
        description="Question templates naming the query's source and, unless the question asks who the target is "
        "('Who is {source}'s {rel}'), its target.",
        min_length=1,
    )
    female_names: list[str] = Field(
        default_factory=lambda: list(_kinship("FEMALE_NAMES")), description="Given names read as female."
    )
    male_names: list[str] = Field(
        default_factory=lambda: list(_kinship("MALE_NAMES")), description="Given names read as male."
    )

    @model_validator(mode="after")
    def _types_known(self) -> "TextRelationsConfig":
        known = set(self.edge_types)
        bad = sorted({r.type for r in self.relations.values()} - known) + sorted(
            (set(self.inverse) | set(self.inverse.values())) - known
        )
        if bad:
            raise ValueError(f"relation types {bad} are not in edge_types")
        for template in self.fact_patterns:
            if "{subj}" not in template or "{obj}" not in template or "{rel}" not in template:
                raise ValueError(f"fact pattern {template!r} needs {{subj}}, {{obj}} and {{rel}}")
        for template in self.query_patterns:
            if "{source}" not in template or ("{target}" not in template and "{rel}" not in template):
                raise ValueError(
                    f"query pattern {template!r} needs {{source}} and {{target}} (or {{rel}}: 'Who is {{source}}'s "
                    "{rel}' asks for the target)"
                )
        return self


def _text_relations_signature(cfg: TextRelationsConfig, ctx: BuildContext) -> Port:
    port = ctx.input
    if port.type != "samples" or "text" not in port.modalities:
        raise PortMismatch(f"needs samples with text, got {port.describe()}")
    return Port(
        "semantic_graph",
        dim=5,
        num_edge_types=len(cfg.edge_types),
        edge_type_names=tuple(cfg.edge_types),
        attributes=frozenset({"query_pair", "gender"}),
    )


text_relations = PluginSpec(
    name="text-relations",
    kind="graph_builder",
    config=TextRelationsConfig,
    factory="autoglm_graph.text_relations:TextRelationsBuilder",
    summary="Parses relational sentences into people (nodes) and typed relations (edges), query pair marked.",
    signature=_text_relations_signature,
    capabilities=frozenset({"cacheable"}),  # a story's graph depends on that story only: parsed once per build
)

# -------------------------------------------------------------------- given


class GivenConfig(PluginConfig):
    """The graph the data carries, used as it is."""

    add_reverse_edges: bool = Field(
        False, description="Add the reverse of every edge (same type), making it undirected."
    )


def _given_signature(cfg: GivenConfig, ctx: BuildContext) -> Port:
    port = ctx.input
    if port.type != "samples" or "graph" not in port.modalities:
        got = ",".join(sorted(port.modalities)) or port.type
        raise PortMismatch(f"needs samples that carry a graph (modality `graph`), got {got}")
    return Port("semantic_graph", dim=port.dim, num_edge_types=port.num_edge_types or 1)


given = PluginSpec(
    name="given",
    kind="graph_builder",
    config=GivenConfig,
    factory="autoglm_graph.given:GivenGraph",
    summary="Uses the graph that each sample already carries.",
    signature=_given_signature,
    capabilities=frozenset({"cacheable"}),
)

# ---------------------------------------------------------------------- knn


class KnnConfig(PluginConfig):
    """A k-nearest-neighbour graph over the node features of each sample's graph."""

    k: int = Field(10, ge=1, le=1000, description="Neighbours per node.")
    metric: Literal["cosine", "euclidean"] = Field("cosine", description="Similarity between node features.")
    symmetric: bool = Field(True, description="Add the reverse of every kNN edge (an undirected graph).")
    combine: Literal["replace", "union"] = Field(
        "replace", description="Use the kNN graph alone, or join it with the graph the sample carries."
    )
    chunk: int = Field(2048, ge=1, description="Rows of the similarity matrix computed at once (memory: chunk x N).")


knn = PluginSpec(
    name="knn",
    kind="graph_builder",
    config=KnnConfig,
    factory="autoglm_graph.knn:KnnGraph",
    summary="k-nearest-neighbour graph over node features (cosine or Euclidean; dense chunked topk, no extension).",
    signature=lambda cfg, ctx: _given_signature(cfg, ctx).with_(num_edge_types=1),
)

# ----------------------------------------------------------------- adaptive


class AdaptiveConfig(PluginConfig):
    """A graph learned with the task: a learnable similarity, sparsified, optionally mixed with the given graph
    (IDGL-style), with smoothness, connectivity and sparsity regularisers added to the training loss."""

    similarity: Literal["weighted_cosine", "gaussian"] = Field(
        "weighted_cosine",
        description="Multi-head weighted cosine (IDGL), or a Gaussian kernel "
        "exp(-|Wx_i - Wx_j|^2 / 2 sigma^2) over a learned linear map W.",
    )
    heads: int = Field(4, ge=1, le=64, description="Heads of the weighted cosine (their similarities are averaged).")
    sigma: Literal["mean", "learned"] = Field(
        "mean", description="Gaussian kernel width: the mean pairwise distance of the batch, or a learned scalar."
    )
    sparsify: Literal["knn", "epsilon"] = Field(
        "knn", description="Keep each node's k most similar nodes, or every pair above epsilon."
    )
    k: int = Field(10, ge=1, le=1000, description="Neighbours per node (sparsify = knn); sets the target density.")
    epsilon: float = Field(0.5, ge=-1, le=1, description="Similarity threshold (sparsify = epsilon).")
    mix: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the given graph in the result: lambda * A_given + (1 - lambda) * "
        "A_learned (0: the learned graph alone; ignored when the sample carries no edges).",
    )
    learn_mix: bool = Field(
        False,
        description="Learn `mix` with the task (starting from its configured value): a heterophilous "
        "given graph can then be mixed out.",
    )
    reweight_given: bool = Field(
        False,
        description="Weight the given graph's edges by the learned similarity as well (down-weighting "
        "edges between dissimilar nodes) instead of keeping them equal.",
    )
    supervision: float = Field(
        0.0,
        ge=0,
        description="Weight of a metric loss on the labelled training nodes: same-label pairs similar, "
        "different-label pairs not (training labels only; 0: the task loss alone trains the metric).",
    )
    iterations: int = Field(
        1,
        ge=1,
        le=5,
        description="Graph learning rounds: from the second on, similarity is measured on the "
        "features propagated over the previous round's graph (iterative refinement).",
    )
    smoothness: float = Field(0.2, ge=0, description="Weight of tr(X^T L X) / N^2: connected nodes should be alike.")
    degree_barrier: float = Field(0.1, ge=0, description="Weight of -1/N * sum log(degree): no isolated nodes.")
    sparsity: float = Field(0.1, ge=0, description="Weight of |A|_F^2 / N^2: against a dense graph.")
    chunk: int = Field(2048, ge=1, description="Rows of the similarity matrix computed at once (memory: chunk x N).")


adaptive = PluginSpec(
    name="adaptive",
    kind="graph_builder",
    config=AdaptiveConfig,
    factory="autoglm_graph.adaptive:AdaptiveGraph",
    summary="Graph learned jointly with the reasoner (learnable metric, kNN/epsilon sparsity, regularisers).",
    signature=lambda cfg, ctx: _given_signature(cfg, ctx).with_(num_edge_types=1),
    capabilities=frozenset({"learnable"}),
)

# ---------------------------------------------------------------------- gcn


class GNNConfig(PluginConfig):
    hidden: int = Field(64, ge=1, le=8192, description="Size of the node states.")
    layers: int = Field(2, ge=1, le=64, description="Rounds of message passing.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout on node states between rounds.")
    residual: bool = Field(False, description="Add each round's input to its output (after the first round).")
    norm: Literal["none", "layer", "batch"] = Field("none", description="Normalisation after each round.")
    share_weights: bool = Field(False, description="Use one convolution for every round after the first.")


class GCNConfig(GNNConfig):
    self_loops: bool = Field(True, description="Add self-loops before normalising (as in Kipf & Welling).")


class GATConfig(GNNConfig):
    heads: int = Field(4, ge=1, le=64, description="Attention heads; hidden must be divisible by heads.")

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "GATConfig":
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class SAGEConfig(GNNConfig):
    aggr: Literal["mean", "max", "sum"] = Field("mean", description="Neighbour aggregation.")


class GINConfig(GNNConfig):
    train_eps: bool = Field(True, description="Learn the weight (1 + eps) of a node's own state.")


class MLPConfig(GNNConfig):
    """Layers of a node-wise MLP; the edges are ignored."""


class RGCNConfig(GNNConfig):
    num_bases: int = Field(
        0, ge=0, description="Basis decomposition of the per-type weights (0 = one full weight per type)."
    )
    aggr: Literal["mean", "sum", "max"] = Field("mean", description="Aggregation of messages within each edge type.")


def _typed_signature(cfg: RGCNConfig, ctx: BuildContext) -> Port:
    port = require_input(ctx, "semantic_graph")
    if port.num_edge_types is None:
        raise PortMismatch("needs typed edges but the upstream stage does not say how many edge types it produces")
    return port.with_(dim=cfg.hidden)


def _gnn(name: str, config: type, cls: str, summary: str, signature=reasoner_signature) -> PluginSpec:
    return PluginSpec(
        name=name,
        kind="reasoner",
        config=config,
        factory=f"autoglm_graph.gnn:{cls}",
        summary=summary,
        signature=signature,
        capabilities=frozenset({"learnable"}),
    )


gcn = _gnn(
    "gcn", GCNConfig, "GCNReasoner", "Graph convolutional network (Kipf & Welling) from PyG, edge types ignored."
)
gat = _gnn("gat", GATConfig, "GATReasoner", "Graph attention (GATv2) from PyG, edge types ignored.")
sage = _gnn("sage", SAGEConfig, "SAGEReasoner", "GraphSAGE from PyG, edge types ignored.")
gin = _gnn("gin", GINConfig, "GINReasoner", "Graph isomorphism network from PyG, edge types ignored.")
mlp = _gnn("mlp", MLPConfig, "MLPReasoner", "Node-wise MLP that ignores the edges: the graph-free baseline.")
rgcn = _gnn("rgcn", RGCNConfig, "RGCNReasoner", "Relational GCN from PyG: one weight per edge type.", _typed_signature)

# -------------------------------------------------------------------- darts


class DartsConfig(PluginConfig):
    """A DARTS supernet over registered reasoner operations; `autoglm search` trains and derives it."""

    operations: list[str] = Field(
        default_factory=lambda: ["gcn", "gat", "sage", "gin", "mlp", "skip", "zero"],
        min_length=2,
        description="Candidate operations of every layer: registered reasoners (each used as one round of width "
        "`hidden`) and the built-in `skip` and `zero`.",
    )
    layers: int = Field(2, ge=1, le=16, description="Mixed layers of the supernet.")
    hidden: int = Field(64, ge=1, le=8192, description="Size of the node states.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout on node states between layers.")
    temperature: float = Field(1.0, gt=0, description="Softmax temperature of the architecture weights.")
    max_skip: int = Field(1, ge=0, description="Most layers a derived architecture may give to `skip`.")
    architecture: list[str] = Field(
        default_factory=list,
        description="A derived architecture, one operation per layer (written by `autoglm "
        "search`; it sets the number of layers): no mixing, trained like any reasoner.",
    )

    @model_validator(mode="after")
    def _architecture_is_discrete(self) -> "DartsConfig":
        if "zero" in self.architecture:
            raise ValueError("architecture may not use `zero` (a layer that passes nothing on)")
        return self


darts = PluginSpec(
    name="darts",
    kind="reasoner",
    config=DartsConfig,
    factory="autoglm_graph.darts:DartsReasoner",
    summary="DARTS supernet mixing registered reasoner operations (plus skip, zero); `autoglm search` derives it.",
    signature=reasoner_signature,
    capabilities=frozenset({"learnable"}),
)

# ------------------------------------------------------------ path-composer


class PathComposerConfig(PluginConfig):
    states: int = Field(
        16, ge=2, le=1024, description="Number of latent relation states K (state 0 is the source's own)."
    )
    max_rounds: int = Field(
        64, ge=1, le=10_000, description="Most propagation rounds; it stops earlier once no new node is reached."
    )
    straight_through: bool = Field(
        True, description="One-hot states in the forward pass with soft gradients (keeps long compositions exact)."
    )
    init_scale: float = Field(1.0, gt=0, description="Standard deviation of the initial transition logits.")


def _path_composer_signature(cfg: PathComposerConfig, ctx: BuildContext) -> Port:
    port = require_input(ctx, "semantic_graph")
    if "query_pair" not in port.attributes:
        raise PortMismatch("needs a graph whose builder marks the query source (attribute query_pair)")
    if port.num_edge_types is None:
        raise PortMismatch("needs typed edges but the upstream stage does not say how many edge types it produces")
    return port.with_(dim=None if port.dim is None else cfg.states + port.dim)


path_composer = PluginSpec(
    name="path-composer",
    kind="reasoner",
    config=PathComposerConfig,
    factory="autoglm_graph.path_composer:PathComposer",
    summary="Composes typed edges outward from the query source with learned discrete relation states.",
    signature=_path_composer_signature,
    capabilities=frozenset({"learnable"}),
)

# --------------------------------------------------------------- classifier


class ClassifierConfig(PluginConfig):
    hidden: int = Field(0, ge=0, description="Hidden layer size of the head (0 = a single linear layer).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the head.")
    readout: Literal["auto", "node", "pool", "pair", "target"] = Field(
        "auto",
        description="What the head reads: node = every node (node-level tasks), pool = the pooled graph, pair = the "
        "query source and target states, target = the query target's state alone (for a reasoner whose target "
        "state holds the answer, such as path-composer). auto picks node for node-level tasks, pair when the graph "
        "marks a query pair, else pool. An encoder's embeddings are always read pooled.",
    )
    pooling: Literal["mean", "sum", "max"] = Field(
        "mean", description="How node states become a graph vector (pool readout)."
    )
    pair_with_graph: bool = Field(False, description="Pair readout: also append the mean-pooled graph.")


def classifier_readout(config: ClassifierConfig, port: Port, task: TaskSpec | None) -> str:
    """The readout the classifier will use for ``port``, or PortMismatch saying why none fits."""
    if port.type == "embeddings":
        return "embeddings"
    port = require_input(BuildContext(inputs={"in": port}), "semantic_graph")
    readout = config.readout
    if readout == "auto":
        if task is not None and task.level == "node":
            return "node"
        return "pair" if "query_pair" in port.attributes else "pool"
    if readout in ("pair", "target") and "query_pair" not in port.attributes:
        raise PortMismatch(
            f"readout '{readout}' needs a graph whose builder marks the query pair (attribute query_pair)"
        )
    if task is not None and (readout == "node") != (task.level == "node"):
        raise PortMismatch(f"readout '{readout}' does not suit a {task.level}-level task")
    return readout


def _classifier_signature(cfg: ClassifierConfig, ctx: BuildContext) -> Port:
    port = ctx.input
    if port.type not in ("semantic_graph", "embeddings"):
        raise PortMismatch(f"needs a semantic graph or embeddings, got {port.type.replace('_', ' ')}")
    classifier_readout(cfg, port, ctx.task)
    return Port("logits", dim=ctx.task.num_classes if ctx.task else None)


classifier = PluginSpec(
    name="classifier",
    kind="decoder",
    config=ClassifierConfig,
    factory="autoglm_graph.classifier:Classifier",
    summary="Classification head over node states (per node, pooled or the query pair) or encoder embeddings.",
    signature=_classifier_signature,
    capabilities=frozenset({"learnable"}),
)


# ------------------------------------------------------- embedding-space objectives (scarce, imbalanced labels)


def _embedding_objective_signature(config: PluginConfig, ctx: BuildContext) -> Port:
    decoder = ctx.inputs.get("decoder")
    if decoder is not None and decoder.type != "logits":
        raise PortMismatch('works through a classifying decoder\'s head: use it with decoder plugin = "classifier"')
    if ctx.task is not None and ctx.task.num_classes < 2:
        raise PortMismatch("needs class labels")
    return Port("objective")


class MixupConfig(PluginConfig):
    weight: float = Field(1.0, ge=0, description="Weight of the mixup term in the training loss.")
    alpha: float = Field(
        0.4, gt=0, description="Mixing weights are drawn from Beta(alpha, alpha): small alpha mixes little."
    )


class SmoteConfig(PluginConfig):
    weight: float = Field(1.0, ge=0, description="Weight of the synthetic rows' cross-entropy in the training loss.")
    k: int = Field(5, ge=1, le=100, description="Nearest same-class neighbours to interpolate towards.")
    implementation: Literal["torch", "imbalanced-learn"] = Field(
        "torch",
        description="torch: interpolated in the graph, so the stages upstream learn from the synthetic rows too; "
        "imbalanced-learn: its SMOTE on detached rows (only the decoder's head learns from them).",
    )


mixup = PluginSpec(
    name="mixup",
    kind="objective",
    config=MixupConfig,
    factory="autoglm_graph.imbalance:Mixup",
    summary="Mixup in the decoder's embedding space: mixed rows of two labelled examples against their mixed labels.",
    signature=_embedding_objective_signature,
)

smote = PluginSpec(
    name="smote",
    kind="objective",
    config=SmoteConfig,
    factory="autoglm_graph.imbalance:Smote",
    summary="SMOTE in the decoder's embedding space: synthetic minority rows until classes are even (own torch "
    "version, or imbalanced-learn's).",
    signature=_embedding_objective_signature,
)
