"""Suggestion algorithms and their gRPC server."""
