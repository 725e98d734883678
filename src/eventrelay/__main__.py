from eventrelay.cli import main

main()
