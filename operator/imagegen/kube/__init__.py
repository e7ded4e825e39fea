"""What every process does with Kubernetes, written once: `clients` builds them (timeouts,
field manager, no ambient proxy, a pool sized on purpose), `objects` reads and deletes
objects that may be gone, `watching` lists and watches (resume, relist on 410 Gone,
inactivity timeout, bounded backoff), and `reflector` feeds an in-memory view from it."""
