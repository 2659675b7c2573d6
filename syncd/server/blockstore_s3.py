"""The S3 chunk-store URL: `s3://BUCKET[/PREFIX]?endpoint=…&region=…` → an obstore S3Store.

Query parameters (all optional):
- `endpoint`: the S3 API's base URL for S3-compatible stores (MinIO, Ceph, moto…);
  an `http://` endpoint is allowed (plain HTTP), anything else needs HTTPS;
- `region`: the bucket's region (default `us-east-1`, or `$AWS_REGION`);
- `access_key_id`, `secret_access_key`, `session_token`: credentials; without them the
  standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / … variables (or an instance
  role) are used, as every AWS tool does;
- `virtual_hosted_style=true`: address the bucket as a host name instead of a path;
- `skip_signature=true`: anonymous requests (a public bucket).
Credentials never appear in logs or error messages (`describe`).
"""

from __future__ import annotations

import os
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from obstore.store import S3Store

# A few quick retries (5xx, dropped connections), then the request fails with a 503 the
# client retries itself: a request never hangs for long on a store that is down.
RETRY = {
    "max_retries": 3,
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)},
    "retry_timeout": timedelta(seconds=10),
}

_KEYS = {
    "endpoint": "endpoint",
    "region": "region",
    "access_key_id": "access_key_id",
    "secret_access_key": "secret_access_key",
    "session_token": "token",
    "virtual_hosted_style": "virtual_hosted_style_request",
    "skip_signature": "skip_signature",
}
_FLAGS = {"virtual_hosted_style", "skip_signature"}


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"s3 URL: {name}={value!r} is not true/false")


def open_s3(url: str) -> tuple[S3Store, str]:
    """The store, and a description of it that is safe to log."""
    parsed = urlparse(url)
    bucket = parsed.netloc
    if not bucket:
        raise ValueError(f"s3 URL {url.split('?')[0]!r}: no bucket (s3://BUCKET/PREFIX)")
    query = parse_qs(parsed.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_KEYS))
    if unknown:
        raise ValueError(f"s3 URL: unknown parameter(s) {unknown}; known: {sorted(_KEYS)}")
    config: dict[str, str | bool] = {}
    for name, values in query.items():
        value = values[-1]
        config[_KEYS[name]] = _flag(name, value) if name in _FLAGS else value
    config.setdefault("region", os.environ.get("AWS_REGION", "us-east-1"))
    endpoint = str(config.get("endpoint", ""))
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"s3 URL: endpoint {endpoint!r} must start with http:// or https://")
    client_options: dict = {"connect_timeout": timedelta(seconds=3)}
    if endpoint.startswith("http://"):
        client_options["allow_http"] = True
    prefix = parsed.path.strip("/") or None
    store = S3Store(
        bucket, prefix=prefix, client_options=client_options, retry_config=RETRY, **config
    )
    where = f" at {endpoint}" if endpoint else ""
    return store, f"s3://{bucket}/{prefix or ''}{where}"
