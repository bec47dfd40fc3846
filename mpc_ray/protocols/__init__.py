"""Sans-I/O protocol state machines: (state, inbox) -> (state, outbox). No Ray, disk or clock."""
