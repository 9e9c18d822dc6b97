"""The fault toolkit and the fault catalogue (docs/reliability.md).

``ledger`` records every execution from inside the tasks, ``checker`` checks the
invariants I1-I4 against it, ``proxy`` cuts, slows and resets connections,
``servers`` starts, kills and restarts throwaway brokers, ``workers`` starts
worker processes on a barrier, ``clock`` runs them under ``faketime``.
"""
