"""msgspec Structs mirroring each vendor's JSON; no logic."""
