"""ShipStation API v2 emulator: the same account as the V1 emulator, seen through V2.

``app`` (routes, the gate's V2 policy, operator endpoints); the resources ``labels``,
``shipments``, ``fulfillments`` and ``webhooks``; ``convert`` (V1 records -> V2 JSON) with
``times`` and ``ids``; ``query`` (reading requests), ``selection`` (filters), ``paging`` (sort,
page, links), ``errors`` (the V2 error body); ``events`` (notifications queued when the world
changes) and ``delivery`` (sending them). Nothing is imported here, so ``scenario`` can import
``events`` without pulling in the app (which imports ``scenario``).
"""
