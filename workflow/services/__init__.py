"""Use cases. Each takes the session and never commits: the caller owns the transaction."""
