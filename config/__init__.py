"""Settings: one typed object, layered as defaults < YAML file < ``LISTENWELL_*`` environment."""

from .settings import (
    ENV_CONFIG,
    ENV_PREFIX,
    AppStoreSettings,
    BrandSettings,
    ConfigError,
    NlpSettings,
    RedditSettings,
    Settings,
    SourcesSettings,
    XSettings,
    default_config_path,
    default_data_dir,
    default_database_url,
    is_secret,
    iter_settings,
    load_settings,
)

__all__ = [
    "ENV_CONFIG",
    "ENV_PREFIX",
    "AppStoreSettings",
    "BrandSettings",
    "ConfigError",
    "NlpSettings",
    "RedditSettings",
    "Settings",
    "SourcesSettings",
    "XSettings",
    "default_config_path",
    "default_data_dir",
    "default_database_url",
    "is_secret",
    "iter_settings",
    "load_settings",
]
