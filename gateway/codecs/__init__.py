"""Client-side codecs: each client API's wire format <-> the IR, and its error bodies."""
