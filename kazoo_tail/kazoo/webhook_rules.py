"""The settings of a Kazoo webhook document and Kazoo's delivery rules, as constants: what
``forward``'s options offer and default to. Stdlib-free, so that the command line (read at
every TAB press) can declare its options without loading the payload builder
(kazoo/webhooks.py). The sources are in docs/webhooks.md."""

from __future__ import annotations

# -- what a webhook document may say (crossbar schema webhooks.json, kzd_webhook) ---------------

# http_verb: schema enum get/post/put, default post (crossbar stores the default).
METHODS = ("post", "put", "get")
DEFAULT_METHOD = "post"
# format: schema enum form-data/json, default form-data; "event" is ours (the raw event).
FORMATS = ("form-data", "json", "event")
DEFAULT_FORMAT = "form-data"
# retries: schema default 2, minimum 0, maximum 4. webhooks_util treats the value as the
# number of attempts in all, after kzd_webhook:constrain_retries clamps it to 1..5 (attempts()).
DEFAULT_RETRIES = 2
MIN_RETRIES = 0
MAX_RETRIES = 4

# -- delivery (webhooks_util) ----------------------------------------------------------------

# retry_hook/3: timer:sleep(2000) before the next attempt.
RETRY_PAUSE = 2.0
# ?HTTP_OPTS = [{connect_timeout, connect_timeout_ms (default 10 000)}]; request_timeout_ms is
# defined (default 10 000) but never passed to kz_http, so httpc's own default, infinity, holds.
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT: float | None = None


def attempts(retries: int) -> int:
    """How many attempts in all Kazoo makes for a stored ``retries`` value
    (kzd_webhook:constrain_retries/1, then retry_hook/3 stops at 1)."""
    return min(5, max(1, retries))
