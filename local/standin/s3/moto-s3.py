"""moto_server with SigV4 checks computed over the raw query string.

Debian's moto (5.1, with werkzeug 3.1) verifies signatures (INITIAL_NO_AUTH_ACTION_COUNT) against a
URL whose query was percent-decoded, so every request with '%2F' in its query (ListObjectsV2 with
prefix=a%2Fb%2F, as pgBackRest and every SDK send it) fails with SignatureDoesNotMatch
(getmoto/moto#5948). This keeps the raw QUERY_STRING from the WSGI environ and signs with it.
It also checks what moto accepts unchecked and R2/S3 refuse: Content-MD5 (BadDigest) and a
hex x-amz-content-sha256 (XAmzContentSHA256Mismatch) against the body.
MOTO_S3_LOG_HEADERS=1 prints each request's method, path and header names on stderr.
"""
import base64
import hashlib
import os
import re
import sys
from urllib.parse import urlsplit

from moto import settings
from moto.core import responses as R
from moto.s3.exceptions import S3ClientError

LOG_HEADERS = os.environ.get("MOTO_S3_LOG_HEADERS") == "1"


class DigestError(S3ClientError):
    code = 400


class AccessDenied(S3ClientError):
    code = 403


def _check_digests(self):
    body = self.body if isinstance(self.body, bytes) else (self.body or "").encode("utf-8")
    md5 = self.headers.get("Content-MD5")
    if md5 is not None and base64.b64encode(hashlib.md5(body).digest()).decode() != md5.strip():
        raise DigestError("BadDigest", "The Content-MD5 you specified did not match what we received.")
    sha = self.headers.get("X-Amz-Content-Sha256")
    if sha and re.fullmatch(r"[0-9a-f]{64}", sha) and hashlib.sha256(body).hexdigest() != sha:
        raise DigestError("XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.")

_orig_setup = R.BaseResponse.setup_class


def setup_class(self, request, full_url, headers, use_raw_body=False):
    _orig_setup(self, request, full_url, headers, use_raw_body)
    env = getattr(request, "environ", None)
    self._raw_query = env.get("QUERY_STRING") if env is not None else None


def _authenticate_and_authorize_action(self, iam_request_cls, resource="*"):
    if LOG_HEADERS:
        print("REQ", self.method, urlsplit(self.uri).path, sorted(k.lower() for k in self.headers.keys()),
              file=sys.stderr, flush=True)
    _check_digests(self)
    if R.ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        R.ActionAuthenticatorMixin.request_count += 1
        return
    if self.headers.get("X-Amz-Target") in R.ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    if "AWS4-HMAC-SHA256" not in self.headers.get("Authorization", ""):
        # moto would fail with a KeyError (HTTP 500); R2 answers 403. (No presigned URLs here.)
        raise AccessDenied("AccessDenied", "Access Denied")
    parts = urlsplit(self.uri)
    query = getattr(self, "_raw_query", None)
    if query is None:
        query = parts.query
    path = parts.path + ("?" + query if query else "")
    iam_request = iam_request_cls(
        account_id=self.current_account, method=self.method, path=path, data=self.data,
        body=self.body, headers=self.headers, action=self._get_action(),
    )
    iam_request.check_signature()
    iam_request.check_action_permitted(resource)


R.BaseResponse.setup_class = setup_class
R.ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action

from moto.server import main  # noqa: E402

main(sys.argv[1:])
