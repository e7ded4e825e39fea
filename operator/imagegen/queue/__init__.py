"""The work queue of a region: a fair priority queue in Redis, with leases and progress.

Modules, imported as modules (`from imagegen.queue import core`, then `core.Queue`):

- `keys`: every key and channel name, with the data model in its docstring.
- `model`: what goes in (`BatchRef`, `ItemSpec`) and comes out (`Lease`, `BatchProgress`,
  `LaneDepth`).
- `payload`: `WorkItem`, the shape of an item's payload, shared by operator and workers.
- `core`: `Queue`, one pool's operations, each one atomic Lua script.
- `lua`: the scripts under `scripts/`, registered on a client.

Order of service, decided inside one script per lease:

1. Strict tiers: while any priority-tier item is queued, no standard-tier item is leased.
2. Within a tier, tenants share by weight with deficit round robin. The tier's active
   lanes (one per tenant) form a ring. The head lane takes one item per lease while its
   deficit is at least 1, paying 1 each time; when it runs out it is credited its weight
   and moves to the tail. A lane that empties leaves the ring and loses its deficit; one
   that (re)joins starts with one quantum. Over any stretch where tenants A and B both
   have work, their shares differ from wA : wB by at most one quantum, and a tenant waits
   at most the sum of the others' weights between turns; so weights are best kept small
   (1..10), where service interleaves finely.
3. Within a tenant: high before normal before low, then first in first out. A retried
   item keeps its original place.

Delivery is at least once: a lease expires unless renewed, and an expired lease is taken
back (by the next `lease`, or `requeue_expired`) with its attempt counted; after
`max_attempts` leases the item fails with its last error. A worker that stops before
finishing hands its items back with `release`, which does not count the attempt.
Completion is idempotent: the first result is kept and later ones are acknowledged and
dropped.
"""
