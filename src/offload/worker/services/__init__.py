"""Side loops of a worker, one per file; each is supervised by the worker, so a
loop that dies stops the worker loudly instead of leaving it half-alive."""
