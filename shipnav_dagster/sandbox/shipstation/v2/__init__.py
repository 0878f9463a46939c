"""ShipStation API v2 emulator: the same account as the V1 emulator, seen through V2.

Modules: ``app`` (routes and the gate), ``convert`` (V1 records -> V2 JSON), ``ids`` (``se-``
identifiers), ``query`` (query parameters), ``paging`` (sort, page, links), ``errors`` (the V2
error body), ``webhooks`` (subscriptions), ``events`` (notifications queued by world changes),
``delivery`` (POSTing them). Nothing is imported here, so ``scenario`` can import ``events``
without pulling in the app (which imports ``scenario``).
"""
