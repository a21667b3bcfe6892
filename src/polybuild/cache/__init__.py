"""Build cache export and import (`--cache-to` / `--cache-from`): what the flags ask for
(`spec`)."""
