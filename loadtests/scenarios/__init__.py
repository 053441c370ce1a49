"""Locust scenarios: who calls the gateway, how often, and what answer each call expects.

`loadtests/locustfile.py` gathers the user classes; each module here is one
kind of caller, reading its credentials from the demo state `xyd demo seed`
wrote (`$XYD_STATE_DIR/demo`, `.xyd/demo` by default).
"""
