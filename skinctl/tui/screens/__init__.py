"""One screen per module, each with its .tcss next to it."""
