"""The deterministic Chengdu demo data set (`xyd demo seed`)."""
