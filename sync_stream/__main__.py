from sync_stream.cli import main

main()
