"""Benchmark harnesses that drive the real suggestion servers: `kubenas bench ...`.

Above the runtimes (it plays the controller's role for tabular trials) and below the CLI;
see `.importlinter`. `nb201`: the tabular NAS-Bench-201 harness.
"""
