"""Where image bytes live: one small protocol, two backends (a local folder, Google Cloud Storage).

Objects are content-addressed: the key of an image is `<sha256[:2]>/<sha256>.<ext>`, so writing
the same bytes twice is a no-op and a stored URL never changes meaning.
"""

from __future__ import annotations

from skinctl.storage.base import Storage, content_key, open_storage

__all__ = ["Storage", "content_key", "open_storage"]
