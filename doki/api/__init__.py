"""HTTP surface of the backend: dependencies and routers."""
