"""The HTTP machinery of the SMO-facing APIs (the O2IMS API and FOCOM's northbound API), one library.

- ``auth``: bearer JWTs checked on every request (signature from a PEM key or a JWKS URL, issuer,
  audience, expiry), roles per handler (``@requires``), TLS/mTLS contexts, token minting for tests
  and the sandbox.
- ``problems``: ProblemDetails (``application/problem+json``) for every error, 404/405 (+``Allow``)
  included; hostile JSON bodies refused with located ``problems``.
- ``query``: the collection query language (``filter``, ``fields``/``exclude_fields``/
  ``exclude_default``/``all_fields``, keyset paging with a ``Link`` header), checked against the
  collection's JSON Schema.
- ``subscriptions``: subscription records in a KV bucket, unique callbacks, the callback allow-list
  and the GET probe.
- ``delivery``: change events on a stream and durable delivery, one JetStream consumer per
  subscription, in order, with backoff, dead callbacks reported; optional hooks to sign each body
  (per-subscription signatures) and to stamp it just before posting (a per-subscription sequence).
"""
