"""The `saga` command line: local runtime, tokens, migrations and operator tools."""
