from faceindex.cli import main

main()
