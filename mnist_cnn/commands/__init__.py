"""The command-line programs: each module's main(argv) is a script and a console command."""
