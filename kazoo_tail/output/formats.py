"""The output formats by name, as "module:factory" (see registry.py); a plain table, so that
the command line can offer the names without loading any output code."""

FORMATS: dict[str, str] = {
    "pretty": "kazoo_tail.output.console:make",
    "json": "kazoo_tail.output.jsonl:make",
}
