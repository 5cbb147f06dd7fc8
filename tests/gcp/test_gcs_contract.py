"""The storage contract (tests/contract/test_storage_contract.py) on GCS, through the emulator.

The emulator takes signed-URL PUTs and GETs (without checking them) but has no POST-policy endpoint. So every
upload here is first verified against the signing key, as GCS would; a form POST is then stored as GCS would
store it after accepting the policy: at the policy's exact key, with its content type, through the emulator's
XML API (an unsigned PUT at that object name).
"""

from __future__ import annotations

import pytest
import requests

from hera_sessions import config
from hera_sessions.backends.storage import gcs
from hera_sessions.backends.storage.base import Storage
from hera_sessions.core.models import ObjectInfo, UploadTicket
from tests.contract.test_storage_contract import Sent, StorageContract, send_upload, signed_query_headers
from tests.envs import service_env
from tests.gcp.conftest import Bucket, ServiceAccount, verify_post_policy, verify_v4_url


class TestGcsStorage(StorageContract):
    """GCS on gcp-storage-emulator, signing with a throwaway service account key."""

    enforces_declared_size = False  # the emulator checks no signature, no size range and no policy

    conditional_delete = False
    conditional_delete_note = "gcp-storage-emulator ignores ifGenerationMatch; GCS honours it"

    enforces_preconditions = False  # nor x-goog-if-generation-match ...
    enforces_md5 = False  # ... nor Content-MD5: what the URL signs is read back instead (bound_headers)

    def bound_headers(self, ticket: UploadTicket) -> set[str]:
        return signed_query_headers(ticket.url, "X-Goog-SignedHeaders")

    def version_of(self, info: ObjectInfo) -> str | None:
        return info.version  # GCS events name the generation

    @pytest.fixture
    def storage(self, gcs_bucket: Bucket, gcp_credentials: ServiceAccount) -> Storage:
        self.account = gcp_credentials
        self.bucket = gcs_bucket
        settings = config.load(service_env("gcs", "redis", bucket=gcs_bucket.name, token_secret="t"))
        return gcs.from_settings(settings)

    def upload(self, ticket: UploadTicket, body: bytes) -> Sent:
        public_key = self.account.public_key
        if ticket.protocol == "put":
            verify_v4_url(ticket.url, ticket.method, ticket.headers, public_key)
            return send_upload(ticket, body)
        assert ticket.protocol == "post"
        policy = verify_post_policy(ticket.fields, public_key)
        conditions = policy["conditions"]
        (low, high) = next(c[1:] for c in conditions if isinstance(c, list) and c[0] == "content-length-range")
        assert low <= len(body) <= high
        assert {"key": ticket.fields["key"]} in conditions
        assert {"Content-Type": ticket.fields["Content-Type"]} in conditions
        url = f"{self.bucket.emulator.url}/{self.bucket.name}/{ticket.fields['key']}"
        response = requests.put(url, data=body, headers={"Content-Type": ticket.fields["Content-Type"]}, timeout=30)
        return Sent([response])
