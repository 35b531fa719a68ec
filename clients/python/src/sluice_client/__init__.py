"""Producer client for Sluice.

Two doors into the same queue:

- over the HTTP API (``Client``, ``AsyncClient``): enqueue, read items and
  units, the queue's status, dead letters;
- inside your own Postgres transaction (``enqueue``, ``enqueue_many`` on a
  psycopg 3 connection): the item exists exactly when your change commits.
"""

from .errors import SluiceError
from .http import AsyncClient, Client
from .sql import enqueue, enqueue_many
from .types import Enqueued, Item, ItemPage, NewItem, new_item

__all__ = [
    "AsyncClient",
    "Client",
    "Enqueued",
    "Item",
    "ItemPage",
    "NewItem",
    "SluiceError",
    "enqueue",
    "enqueue_many",
    "new_item",
]
