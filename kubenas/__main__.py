from kubenas.cli import main

main()
