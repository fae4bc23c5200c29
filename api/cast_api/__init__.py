"""cast-gatekeeper HTTP API: the eight Cast 2.0 routes, served from StreamLink resources."""
