"""The storage contract that every backend passes, over Azure Blob storage on Azurite."""

from __future__ import annotations

import pytest

from hera_sessions import config
from hera_sessions.backends.storage import azure
from hera_sessions.backends.storage.base import Storage
from tests.azure.conftest import Azurite, Container
from tests.contract.test_storage_contract import StorageContract


class TestAzureStorage(StorageContract):
    """Azurite checks SAS signatures, but a SAS binds no size: a bigger body is taken, and the BlobCreated
    event's contentLength is what refuses it (tests/azure/test_function_app.py)."""

    enforces_declared_size = False

    @pytest.fixture
    def storage(self, azurite: Azurite, azure_container: Container) -> Storage:
        settings = config.Settings(
            azure_connection_string=azurite.connection_string, azure_container_name=azure_container.name
        )
        return azure.from_settings(settings)
