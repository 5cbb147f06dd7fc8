"""The reference implementations: the same work done the obvious way, kept here so every ratio is measured
against running code in the same run.

- :mod:`bench.reference.api_app`: an API function built from a Powertools ``APIGatewayHttpResolver``, a boto3 S3
  client, a redis-py client and ``generate_presigned_url``, all created at import (the usual Lambda pattern).
- :mod:`bench.reference.events_app`: a storage-event function that writes each S3 event with one Redis round trip
  (``SET ... EX``: the value and its expiry) under the seed's key layout.
- :mod:`bench.reference.seed_layout`: the seed's Redis layout, one string key per item.
- :mod:`bench.reference.floor_app`: not a reference but a floor: the Powertools resolver and logger, a redis-py
  client and one read, nothing else (what figure 1 cannot go below while keeping both libraries).

The ``*_app`` modules are imported as top-level modules by cold-start children (``PYTHONPATH`` = this
folder, as Lambda puts a function's folder on the path): they import nothing from ``bench`` or hera_sessions.
"""
