"""Edges to other systems, each behind its extra (``offload[azure-functions]``, ...)."""
