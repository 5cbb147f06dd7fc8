"""hera-sessions: the storage side of Hera — presigned uploads, storage events into Redis, signed downloads.

The server-side read API for the AI backend is :class:`hera_sessions.reader.SessionReader`::

    from hera_sessions.reader import SessionReader

    reader = SessionReader.from_env()
    profile = reader.document(session_id, "user_profile")
    for f in reader.files(session_id):
        data = reader.read(session_id, f.path)       # or reader.download_url(session_id, f.path)

Nothing is imported here eagerly: a cold start pays only for what it uses.
"""

__version__ = "0.1.0"
