"""The architecture a NAS trial found, from wherever its trainer put it, in words a person reads.

A trial of an ENAS or NAS-Bench-201 experiment is given its architecture as assignments
(`architecture`, `nn_config`); a one-shot search trial (DARTS, enas-oneshot) is given the
search space and prints what it found as its last `Best-Genotype=` / `Best-Architecture=`
(+ `Best-NN-Config=`) lines, which may also have been collected as text metrics. One
function finds it (`find_architecture`), one renders it (`FoundArchitecture.lines`);
`results.json`, the final terminal block and `kubenas-train retrain RUN_DIR` use both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kubenas.error_text import invalid_value
from kubenas.genotype import Genotype, GenotypeError
from kubenas.nb201 import NB201_EDGES, NB201_NUM_NODES, Cell201
from kubenas.space import ExpandedOp, MacroArchitecture, SpaceError, loads_lenient

__all__ = [
    "KINDS",
    "FoundArchitecture",
    "RunDirError",
    "describe_op",
    "find_architecture",
    "primitive_word",
    "run_architecture",
    "trial_output_lines",
]

KINDS = ("macro", "cell", "nb201")
# The search trainers' result lines (trainer.darts, trainer.enas_search): the last one wins.
_BEST_LINE = re.compile(r"(?:^|\s)Best-(Genotype|Architecture|NN-Config)=(\S.*?)\s*$")
# A trial's output may be rotated into these parts (controller.local_trials.CappedLog):
# the first bytes, then the oldest and the newest of the rest.
_OUTPUT_PARTS = ("stdout.log", "stdout.log.2", "stdout.log.1")
_LINE_LIMIT = 1 << 20  # a longer line is no architecture; skip it unread

_OP_NAMES = {"convolution": "conv", "separable_convolution": "separable conv",
             "depthwise_convolution": "depthwise conv", "dilated_convolution": "dilated conv"}


def describe_op(op: ExpandedOp) -> str:
    """`separable conv 5x5, 32 filters`, `max pooling 2x2`, `identity`, or `type k=v, ...`."""
    p = dict(op.opt_params)
    if op.opt_type == "reduction":
        kind = str(p.pop("reduction_type", "max_pooling")).replace("_", " ")
        size = p.pop("pool_size", 2)
        text = f"{kind} {size}x{size}"
    elif op.opt_type == "skip_connection":
        text = "identity"
    elif op.opt_type in _OP_NAMES:
        text = _OP_NAMES[op.opt_type]
        if "filter_size" in p:
            k = p.pop("filter_size")
            text += f" {k}x{k}"
        details = []
        if "num_filter" in p:
            details.append(f"{p.pop('num_filter')} filters")
        if str(p.get("depth_multiplier", 1)) == "1":
            p.pop("depth_multiplier", None)
        if str(p.get("stride", 1)) == "1":
            p.pop("stride", None)
        details += [f"{k.replace('_', ' ')} {v}" for k, v in p.items()]
        return ", ".join([text, *details])
    else:
        text = op.opt_type
    rest = ", ".join(f"{k}={v}" for k, v in p.items())
    return f"{text}, {rest}" if rest else text


# Cell primitives (Katib's names, kubenas.space.primitive_names) in the DARTS paper's short form.
_PRIMITIVE_WORDS = (("separable_convolution", "sep_conv"), ("dilated_convolution", "dil_conv"),
                    ("depthwise_convolution", "dw_conv"), ("convolution", "conv"), ("max_pooling", "max_pool"),
                    ("avg_pooling", "avg_pool"), ("skip_connection", "skip"), ("skip_connect", "skip"))


def primitive_word(name: str) -> str:
    """`separable_convolution_3x3` -> `sep_conv_3x3`, `skip_connection` -> `skip`; others as given."""
    for long, short in _PRIMITIVE_WORDS:
        if name == long or name.startswith(long + "_"):
            return short + name[len(long):]
    return name


def _source_name(index: int) -> str:
    # Katib's indexing: all_layers[0] is the network input, all_layers[j] the output of layer j-1
    return "input" if index == 0 else f"layer {index - 1}"


def _cell_input(index: int) -> str:
    return ("c_{k-2}", "c_{k-1}")[index] if index < 2 else f"node {index - 2}"


@dataclass(frozen=True)
class FoundArchitecture:
    """One found architecture. `architecture` and `nn_config` are the texts a trainer takes
    (`kubenas-train enas|nb201|retrain --architecture ... --nn_config ...`); `hints` are what
    the run knew about training it (`num_layers` of a DARTS network, `dataset`)."""

    kind: str                               # one of KINDS
    architecture: str
    nn_config: str | None
    source: str                             # where it was found, for people
    macro: MacroArchitecture | None = None
    ops: Mapping[int, ExpandedOp] = field(default_factory=dict)
    genotype: Genotype | None = None
    cell: Cell201 | None = None
    hints: Mapping[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The architecture in words, one line per layer, cell node or NB201 node."""
        if self.macro is not None:
            out = [f"ENAS macro network, {len(self.macro.rows)} layers:"]
            for i, row in enumerate(self.macro.rows):
                op = self.ops.get(row[0])
                text = f"  layer {i}: " + (describe_op(op) if op is not None else f"op {row[0]}")
                skips = [_source_name(j) for j, bit in enumerate(row[1:]) if bit]
                if skips:
                    text += f"; skip{'s' if len(skips) > 1 else ''} from " + ", ".join(skips)
                out.append(text)
            return out
        if self.genotype is not None:
            g = self.genotype
            out = []
            for name, edges, concat in (("normal", g.normal, g.normal_concat), ("reduction", g.reduce, g.reduce_concat)):
                nodes = ", ".join(str(c - 2) for c in concat)
                out.append(f"{name} cell (output: concat of nodes {nodes}):")
                for node in range(len(edges) // 2):
                    pair = edges[2 * node: 2 * node + 2]
                    out.append(f"  node {node} = " + " + ".join(f"{primitive_word(p)}({_cell_input(i)})" for p, i in pair))
            return out
        if self.cell is not None:
            out = ["NAS-Bench-201 cell (node 0 is the input, node 3 the output):"]
            for node in range(1, NB201_NUM_NODES):
                terms = [f"{primitive_word(op)}(node {src})" for op, (to, src) in zip(self.cell.ops, NB201_EDGES)
                         if to == node and op != "none"]
                out.append(f"  node {node} = " + (" + ".join(terms) if terms else "zero (every edge is none)"))
            return out
        return [self.architecture]

    def text(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict[str, Any]:
        """results.json's `architecture`: the kind, the structure, the trainer's texts and the words."""
        structure: Any
        if self.macro is not None:
            structure = {"layers": [{"op": self.ops[r[0]].to_json() if r[0] in self.ops else {"opt_id": r[0]},
                                     "skips_from": [_source_name(j) for j, bit in enumerate(r[1:]) if bit]}
                                    for r in self.macro.rows]}
        elif self.genotype is not None:
            structure = self.genotype.to_dict()
        elif self.cell is not None:
            structure = {"cell": self.cell.to_string(), "edges": [
                {"to": to, "from": src, "op": op} for op, (to, src) in zip(self.cell.ops, NB201_EDGES)]}
        else:
            structure = None
        return {
            "kind": self.kind,
            "source": self.source,
            "structure": structure,
            "architecture": self.architecture,
            "nn_config": self.nn_config,
            "hints": dict(self.hints),
            "text": self.lines(),
        }


def trial_output_lines(trial_dir: Path) -> Iterator[str]:
    """The lines of a local trial's stdout.log (and its rotated parts), oldest first; nothing
    when the directory or a part is missing or unreadable."""
    for part in _OUTPUT_PARTS:
        try:
            with (trial_dir / part).open("rb") as f:
                for raw in f:
                    if len(raw) <= _LINE_LIMIT:
                        yield raw.decode("utf-8", "replace").rstrip("\r\n")
        except OSError:
            continue


def _unquoted(text: str) -> str:
    """Without one pair of surrounding quotes: Katib's templates pass `--x="${...}"` without a shell."""
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def _object(text: str) -> Any:
    try:
        return loads_lenient(_unquoted(text))
    except SpaceError:
        return None


def _config_text(text: str | None) -> str | None:
    """`text` when it is an nn_config object (enas-oneshot's `search-space`), else None (DARTS'
    `search-space` is a list of primitive names)."""
    return text if text is not None and isinstance(_object(text), Mapping) else None


def _hints(assignments: Mapping[str, str]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    settings = _object(assignments.get("algorithm-settings", ""))
    if isinstance(settings, Mapping) and isinstance(settings.get("dataset"), str):
        hints["dataset"] = settings["dataset"]
    layers = assignments.get("num-layers", "").strip()
    if layers.isdigit() and int(layers) > 0:
        hints["num_layers"] = int(layers)
    return hints


def _build(architecture: str, nn_config: str | None, source: str, hints: Mapping[str, Any]) -> FoundArchitecture | None:
    """Parse one architecture text (macro rows, genotype JSON or Katib text, NB201 string)."""
    config = _object(nn_config) if nn_config else None
    config = config if isinstance(config, Mapping) else None
    body = _unquoted(architecture)
    try:
        if body.startswith("|") or (config is not None and config.get("search_mode") == "nb201"):
            return FoundArchitecture("nb201", body, nn_config, source, cell=Cell201.from_string(body), hints=hints)
        if body.startswith("Genotype("):
            genotype = Genotype.parse_katib(body)
            return FoundArchitecture("cell", genotype.to_json(), nn_config, source, genotype=genotype, hints=hints)
        data = _object(body)
        if isinstance(data, Mapping):
            genotype = Genotype.from_dict(data)
            return FoundArchitecture("cell", genotype.to_json(), nn_config, source, genotype=genotype, hints=hints)
        if isinstance(data, list) and all(isinstance(r, list) and r and all(isinstance(x, int) for x in r) for r in data):
            macro = MacroArchitecture(tuple(tuple(r) for r in data))
            ops: dict[int, ExpandedOp] = {}
            embedding = config.get("embedding") if config is not None else None
            if isinstance(embedding, Mapping):
                for key, entry in embedding.items():
                    if isinstance(entry, Mapping) and "opt_type" in entry:
                        try:
                            ops[int(str(key))] = ExpandedOp.from_json({"opt_id": entry.get("opt_id", key), **entry})
                        except (TypeError, ValueError, KeyError):
                            continue
            return FoundArchitecture("macro", macro.to_json(), nn_config, source, macro=macro, ops=ops, hints=hints)
    except (GenotypeError, SpaceError):
        return None
    return None


def find_architecture(
    assignments: Mapping[str, str],
    observation: Mapping[str, float | str] | None = None,
    output: Iterable[str] = (),
) -> FoundArchitecture | None:
    """The architecture of one trial, or None for an HPO trial (or one that found none).

    Looked for in this order: the trial output's last `Best-Genotype=`/`Best-Architecture=`
    line (with `Best-NN-Config=`, else the `search-space` assignment, as its nn_config); a
    text metric holding a `Genotype(...)`; the `architecture` (+ `nn_config`) assignments.
    """
    hints = _hints(assignments)
    best: dict[str, str] = {}
    for line in output:
        if "Best-" in line:
            match = _BEST_LINE.search(line)
            if match:
                best[match[1]] = match[2]
    found_text = best.get("Genotype") or best.get("Architecture")
    if found_text is not None:
        which = "Best-Genotype" if "Genotype" in best else "Best-Architecture"
        nn_config = best.get("NN-Config") or _config_text(assignments.get("search-space"))
        found = _build(found_text, nn_config, f"the trial's last {which}= line", hints)
        if found is not None:
            return found
    for name, value in (observation or {}).items():
        if isinstance(value, str) and value.strip().startswith("Genotype("):
            found = _build(value, _config_text(assignments.get("search-space")), f"the trial's metric {name}", hints)
            if found is not None:
                return found
    if "architecture" in assignments:
        return _build(assignments["architecture"], assignments.get("nn_config"), "the trial's assignments", hints)
    return None


class RunDirError(ValueError):
    """A work directory or trial that holds no architecture; names the field, value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(invalid_value(field, value, allowed))


def _template_dataset(run_dir: Path) -> str | None:
    """The `--dataset` the experiment's trial command passes (its YAML is named in
    experiment.json), or None when it passes none or the file is gone."""
    try:
        marker = json.loads((run_dir / "experiment.json").read_text(encoding="utf-8"))
        doc = yaml.safe_load(Path(marker["file"]).read_text(encoding="utf-8"))
        pod = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
        words = [str(w) for c in pod["containers"] for w in [*(c.get("command") or []), *(c.get("args") or [])]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return None
    for i, word in enumerate(words):
        if word.startswith("--dataset="):
            return word.partition("=")[2]
        if word == "--dataset" and i + 1 < len(words):
            return words[i + 1]
    return None


def run_architecture(run_dir: Path, trial: str | None = None) -> tuple[str, FoundArchitecture]:
    """(trial name, architecture) of a `kubenas run` work directory: its best trial, or `trial`
    (a full name, or the part after `<experiment>-` that narrow tables show)."""
    results = run_dir / "results.json"
    if not run_dir.is_dir():
        raise RunDirError("RUN_DIR", str(run_dir), "must be the work directory of a `kubenas run` (e.g. runs/<experiment>)")
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
        trials = {t["name"]: t for t in doc["trials"]}
    except FileNotFoundError:
        why = ("its run has not finished: results.json is written when `kubenas run` ends or is interrupted"
               if (run_dir / "kubenas.db").exists() else "must be the work directory of a `kubenas run` (it has no results.json)")
        raise RunDirError("RUN_DIR", str(run_dir), why) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError("RUN_DIR", str(results), "must hold a readable results.json written by `kubenas run`") from None
    if trial is None:
        best = doc.get("best_trial")
        if not isinstance(best, dict) or best.get("name") not in trials:
            raise RunDirError("RUN_DIR", str(run_dir), "has no best trial (no trial reported the objective); "
                                                       "name one with --trial")
        name = best["name"]
    else:
        candidates = [trial, f"{doc.get('experiment')}-{trial}"]
        name = next((c for c in candidates if c in trials), "")
        if not name:
            shown = ", ".join(list(trials)[:5]) + (", ..." if len(trials) > 5 else "")
            raise RunDirError("--trial", trial, f"must be a trial of {run_dir} ({shown or 'it has none'})")
    record = trials[name]
    found = find_architecture(record.get("assignments") or {}, record.get("observation") or {},
                              trial_output_lines(run_dir / "trials" / name))
    if found is None:
        raise RunDirError("--trial", name, "has no architecture (neither ENAS/NB201 assignments nor a "
                                            "Best-Genotype/Best-Architecture line in its output): an HPO trial?")
    if "dataset" not in found.hints:
        dataset = _template_dataset(run_dir)
        if dataset is not None:
            found = replace(found, hints={**found.hints, "dataset": dataset})
    return name, found
