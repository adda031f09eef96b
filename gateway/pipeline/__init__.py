"""What happens to an LLM request between the edge and the provider: routing with
fallback (``routing``) and the per-entity attempt (``dispatch``). Rate limits and
guardrails join as stages in front of routing."""
