//! Text tables and JSON for the batch front end.
