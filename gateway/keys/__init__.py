"""The bottom layer: compact JWS and JWKs on joserfc (jose.py; fast_path.py for
the two calls every request makes), the gateway's signing keys stored and
rotated (store.py), a process's ring of them (ring.py), and the key ring that
seals personal fields (pii.py). Imports nothing of the gateway's but
settings, the tables and timeutil (tests/test_import_cycles.py)."""
