"""Readings -> network: a streaming server, the page it serves, and a client for it.

- ``app.py``: the FastAPI application (routes, auth and limits, start-up and shutdown);
- ``stream.py``: one WebSocket stream = one VIDEO-mode estimator, latest frame wins;
- ``frames.py``: encoded frames -> pixels, with the byte and pixel limits checked first;
- ``protocol.py``: the messages on the wire, shared by the server and the client;
- ``client.py``: :class:`RemoteEstimator`, an estimator whose frames are read on a server;
- ``static/``: the browser page (camera or file, overlay, chart), shipped in the wheel.

The server needs the ``[serve]`` extra (FastAPI, uvicorn); the client only ``websockets``.
"""
