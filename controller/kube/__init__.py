"""The cluster runtime, a kopf operator: `operator` (thin handlers) runs `step` (one experiment
at a time) over one module per kind (`experiment`, `suggestion`, `trial`), each a pure
decision plus the reconcile that reads, decides and writes through `context`."""
