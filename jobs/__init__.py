"""Background work on rq: delivery of notifications now, deadline sweeps later."""
