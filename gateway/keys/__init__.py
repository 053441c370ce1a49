"""The bottom layer: compact JWS and JWKs (jose.py), the gateway's signing keys
stored and rotated (store.py), a process's ring of them (ring.py), and the key
ring that seals personal fields (pii.py). Imports nothing else of the gateway's
but settings and the tables."""
