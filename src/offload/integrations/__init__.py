"""Edges to other systems, each behind its extra: ``opentelemetry`` (traces, the
``otel`` extra) and ``prometheus`` (metrics, the ``prometheus`` extra)."""
