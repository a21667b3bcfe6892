"""Git sources fetched with the system `git`: references parsed as BuildKit parses them
(url.py), commits resolved, cached in the data root and checked out (checkout.py)."""
