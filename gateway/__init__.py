"""xyd-gateway: the Xin Yi Dai credit data-sharing gateway."""

__version__ = "0.1.0"
