"""Talking to the request-workflow API: the HTTP client, credentials, bodies, the verdict on each
answer and the one retry loop, pacing, listing."""
