"""The demo kit, a distribution apart from the gateway (demo/pyproject.toml): the
deterministic Chengdu data set (`xyd demo seed`), the platforms' simulators
(simulators/) and the demo commands (cli.py), none of them in a production install."""
