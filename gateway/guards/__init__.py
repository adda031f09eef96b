"""Guardrails: one module per check (``keywords``, ``patterns``, ``pii``, ``safety``,
``topics``), one verdict contract (``verdict``), the registry of checks (``registry``),
the judge endpoint that decides the judged checks (``judge``), and where the text of a
request or a reply is read and rewritten (``request_texts``, ``reply_texts``). The stage
that runs them on a call is ``gateway.pipeline.guardrails``."""
