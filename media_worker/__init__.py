"""Websocket media workers that run conversation templates on pipecat pipelines."""
