"""The reference implementations: the same work done the obvious way, kept here so every ratio is measured
against running code in the same run.

- :mod:`bench.reference.api_app`: the idiomatic Powertools API function: ``Logger`` and ``Metrics`` decorators, an
  ``APIGatewayHttpResolver``, a boto3 S3 client with ``generate_presigned_url``, a redis-py client, all created at
  import (the usual Lambda pattern), one metric per call; upload and download routes.
- :mod:`bench.reference.events_app`: the idiomatic Powertools storage-event function: ``BatchProcessor`` over SQS,
  the same decorators, one Redis round trip per event (``SET ... EX``) under the seed's key layout.
- :mod:`bench.reference.seed_layout`: the seed's Redis layout, one string key per item.
- :mod:`bench.reference.floor_app`: not a reference but a floor: the Powertools resolver and logger, a redis-py
  client and one read, nothing else (what figure 1 cannot go below while keeping both libraries).

The ``*_app`` modules are imported as top-level modules by cold-start children (``PYTHONPATH`` = this
folder, as Lambda puts a function's folder on the path): they import nothing from ``bench`` or hera_sessions.
"""
