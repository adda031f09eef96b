"""Provider adapters: IR <-> each upstream's wire format, plus its transport."""
