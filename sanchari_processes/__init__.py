"""SANCHARi: road-network extraction from satellite and aerial imagery."""

import time as _time

__version__ = "0.1.0"

#: ``time.perf_counter()`` when the package was first imported: the start of a ``sanchari``
#: command's clock (its time to the first patch is counted from here).
STARTED = _time.perf_counter()
