"""The OGC API - Processes service on pygeoapi.

pygeoapi is imported only by the edge modules ``process`` (the processor plugin), ``manager``
(the process-manager plugin) and ``app`` (the WSGI app factory); ``config``, ``inputs``,
``jobs``, ``store``, ``executor`` and ``server`` are plain Python, so worker processes never
load the web stack.
"""
