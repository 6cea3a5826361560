# `python -m kubenas`: an entry point, the one place the core reaches up to the CLI layer.
from kubenas_cli.app import main

main()
