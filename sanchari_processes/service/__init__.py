"""The OGC API - Processes service on pygeoapi, in rooms by role.

The web edge (the only modules that import pygeoapi or Flask):

- ``server``: ``sanchari serve`` under waitress; ``app``: the WSGI app from a config;
  ``handlers``: request handlers where pygeoapi's fall short; ``openapi``: the OpenAPI document
  (its static schemas in ``openapi_schemas.yaml``);
- ``process``: the processor plugins (describe, validate and plan a job);
- ``manager``: the process-manager plugin: runs jobs, answers results.

Plain Python behind it, so worker processes never load the web stack:

- ``settings``: typed settings read from pygeoapi's configuration;
- ``requests``: what an execute request asks for, and the answer that gives it back;
- ``jobs``: a job as a worker runs it; ``status``: a job's status document;
- ``store/``: the job store (``base`` interface, ``sqlite``, ``postgresql``; ``open_store``);
- ``executors/``: where jobs run (``base`` interface, ``local`` process pool, ``dask``
  cluster; ``make_executor``);
- ``events``: job events written to the store; ``sync``: synchronous executions;
  ``planning``: the threads that read remote headers before a job is queued;
- ``recovery``: jobs whose owner is gone, heartbeats, expiry; ``callbacks``: job callbacks.
"""
