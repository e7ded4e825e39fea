"""The worker process: takes items from its region's queue, runs a provider, stores the
image and reports progress.

Modules, from the top: `loop` (settings, the slots, stopping), `items` (one leased item
from payload to result), `health` (the probe endpoints), `storage` (where images go) and
`providers/` (the image generators, tried in order per item).
"""
