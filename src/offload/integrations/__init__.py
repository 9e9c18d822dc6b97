"""Edges to other systems, each behind its extra: ``opentelemetry`` (traces, the
``otel`` extra), ``prometheus`` (metrics, the ``prometheus`` extra) and
``azure_functions`` (a queue trigger, the ``azure-functions`` extra)."""
