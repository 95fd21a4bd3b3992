"""The operators' console: a web page and its HTTP API (admin tokens only) to see every
order's state, find stuck orders and dead letters, and cancel or re-drive, one at a time or
in bulk, through the state machine, the unit of work and the outbox, with an audit trail.
main.py is the functions-framework entry point; routes.py declares the API."""
