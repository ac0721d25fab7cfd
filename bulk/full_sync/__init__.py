"""The full sync: the service (enable, re-sync, cancel, disable, the run with its lease), the bulk
operation's state machine, the JSONL download and the ingest into the store."""
