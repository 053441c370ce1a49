from tests.identity.conftest import app_client, bank, id_mode, id_settings, store_url

__all__ = ["app_client", "bank", "id_mode", "id_settings", "store_url"]
