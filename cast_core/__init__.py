"""Shared domain of cast-gatekeeper: keys, rooms, identities, grants, StreamLinks and their store.

Imports neither kopf nor FastAPI, so the API and the operator can both depend on it.
"""
