"""One module per subcommand: its options (``add_parser``) and how it runs (``run``)."""
