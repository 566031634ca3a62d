"""One module per `verity` subcommand."""
