"""CPU time per relayed stream event of the same-format passthrough's usage sniffers.

    python -m bench.sniff_bench                              # this tree
    python -m bench.sniff_bench --before /tmp/before         # and another checkout, alternating

Each format's stream (the fake upstream's canned streams; a Responses stream built here the
way OpenAI sends one) is relayed through the sniffer ``gateway.pipeline.passthrough`` puts
beside it, one upstream read per event, and the sniffer's usage is checked.

Beside them, one 1 MiB event arriving in 1 KiB reads through the bare ``SSEDecoder`` (ms per
event): the case where a decoder that re-joins its buffer per read goes quadratic.

``--before`` loads that checkout's ``gateway`` package into this process as
``gateway_before`` (a copy with its imports renamed), and the rounds alternate between the
two, so that drift in the machine's load falls on both sides alike. Prints one JSON line:
µs of CPU time (this process's) per event, medians of ``--rounds`` rounds, and with
``--before`` the medians of the per-round ratios after ÷ before.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from bench.bodies import CANNED, REPLY, USAGE

Make = Callable[[], object]


def _sse(obj: object, event: str) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _responses_stream(deltas: int) -> list[bytes]:
    """A Responses stream as OpenAI sends it: named events, the whole response repeated at
    start and end, the whole text again in the ``.done`` events."""
    words = (REPLY.split() * (deltas // 8 + 2))[:deltas]
    text = " ".join(words)
    response = {"id": "resp_1", "object": "response", "model": "bench", "status": "in_progress", "output": [],
                "instructions": "You are a concise assistant.", "tools": [], "usage": None}
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    done_item = {**item, "status": "completed", "content": [{**part, "text": text}]}
    usage = {"input_tokens": USAGE[0], "output_tokens": USAGE[1], "total_tokens": sum(USAGE),
             "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    events = [
        _sse({"type": "response.created", "sequence_number": 0, "response": response}, "response.created"),
        _sse({"type": "response.in_progress", "sequence_number": 1, "response": response}, "response.in_progress"),
        _sse({"type": "response.output_item.added", "output_index": 0, "item": item}, "response.output_item.added"),
        _sse({"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
              "part": part}, "response.content_part.added"),
    ]
    events += [_sse({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
                     "delta": w + " ", "logprobs": []}, "response.output_text.delta") for w in words]
    events += [
        _sse({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
              "text": text, "logprobs": []}, "response.output_text.done"),
        _sse({"type": "response.content_part.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
              "part": {**part, "text": text}}, "response.content_part.done"),
        _sse({"type": "response.output_item.done", "output_index": 0, "item": done_item}, "response.output_item.done"),
        _sse({"type": "response.completed", "response": {**response, "status": "completed", "output": [done_item],
                                                        "usage": usage}}, "response.completed"),
    ]
    return events


def _events(stream: bytes) -> list[bytes]:
    """One upstream read per SSE event (how the fake upstream paces a stream)."""
    return [e + b"\n\n" for e in stream.split(b"\n\n") if e]


def streams(deltas: int) -> dict[str, list[bytes]]:
    return {
        "openai_chat": _events(CANNED["openai"].whole_stream(deltas, usage=True)),
        "anthropic": _events(CANNED["anthropic"].whole_stream(deltas, usage=False)),
        "gemini": _events(CANNED["gemini"].whole_stream(deltas, usage=False)),
        "openai_responses": _responses_stream(deltas),
    }


def sniffers(package: str) -> dict[str, Make]:
    """The sniffers ``<package>.pipeline.passthrough`` puts beside each format's relay."""
    mod: Callable[[str], ModuleType] = lambda name: importlib.import_module(f"{package}.{name}")  # noqa: E731
    sniff = mod("streaming.sniff")
    anthropic, gemini = mod("providers.anthropic"), mod("providers.gemini")

    def event_sniffer(decoder: Callable[[str], object], measure: str) -> Make:
        fn = getattr(sniff, measure, None)  # a checkout from before the measures has none
        return lambda: sniff.EventSniffer(decoder("p")) if fn is None else sniff.EventSniffer(decoder("p"), fn)

    return {
        "openai_chat": lambda: mod("streaming.passthrough").ChatStreamSniffer(drop_usage_chunk=True),
        "anthropic": event_sniffer(anthropic.AnthropicStreamDecoder, "anthropic_block_chars"),
        "gemini": event_sniffer(gemini.GeminiStreamDecoder, "gemini_text_chars"),
        "openai_responses": mod("streaming.responses_sniff").ResponsesStreamSniffer,
    }


def load_before(tree: str) -> str:
    """``tree``'s gateway package, importable here as ``gateway_before``."""
    workdir = tempfile.mkdtemp(prefix="sniff-bench-")
    atexit.register(shutil.rmtree, workdir, True)
    target = Path(workdir) / "gateway_before"
    shutil.copytree(Path(tree) / "gateway", target, ignore=shutil.ignore_patterns("__pycache__"))
    imports = re.compile(r"^(\s*)(from|import) gateway\b", re.M)
    for path in target.rglob("*.py"):
        path.write_text(imports.sub(r"\1\2 gateway_before", path.read_text()))
    sys.path.insert(0, str(target.parent))
    return "gateway_before"


def per_event_us(make: Make, reads: list[bytes], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        sniffer = make()
        for chunk in reads:
            sniffer.relay(chunk)  # type: ignore[attr-defined]
        sniffer.finish()  # type: ignore[attr-defined]
    elapsed = time.process_time() - started
    assert sniffer.usage is not None and sniffer.usage.output_tokens == USAGE[1] and sniffer.error is None  # type: ignore[attr-defined]
    return elapsed / (count * len(reads)) * 1e6


def big_event_ms(package: str, size: int = 1 << 20, read: int = 1024) -> float:
    decoder_class = importlib.import_module(f"{package}.streaming.sse").SSEDecoder
    stream = b"data: " + b"x" * size + b"\n\n"
    reads = [stream[i:i + read] for i in range(0, len(stream), read)]
    started = time.process_time()
    decoder = decoder_class()
    events = [ev for chunk in reads for ev in decoder.feed(chunk)]
    elapsed = time.process_time() - started
    assert len(events) == 1 and len(events[0].data) == size
    return elapsed * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deltas", type=int, default=64, help="text deltas per stream (the streaming scenario's 64)")
    parser.add_argument("--streams", type=int, default=500, help="streams per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--before", metavar="TREE", help="a checkout to compare against, e.g. git worktree add /tmp/before HEAD~1")
    args = parser.parse_args()
    sides = {"after": sniffers("gateway")} if args.before else {"this": sniffers("gateway")}
    if args.before:
        sides = {"before": sniffers(load_before(args.before)), **sides}
    result: dict[str, dict[str, float]] = {side: {} for side in sides}
    ratios: dict[str, float] = {}
    for name, reads in streams(args.deltas).items():
        for side in sides.values():
            per_event_us(side[name], reads, 50)  # warm up
        rounds: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.rounds):
            for side, makers in sides.items():
                rounds[side].append(per_event_us(makers[name], reads, args.streams))
        for side in sides:
            result[side][name] = round(statistics.median(rounds[side]), 3)
        if args.before:
            ratios[name] = round(statistics.median(a / b for a, b in zip(rounds["after"], rounds["before"])), 2)
    packages = {"before": "gateway_before", "after": "gateway"} if args.before else {"this": "gateway"}
    big = {side: round(statistics.median(big_event_ms(pkg) for _ in range(3)), 1) for side, pkg in packages.items()}
    out: dict[str, object] = {"us_per_event": result, "ms_1MiB_event_in_1KiB_reads": big, "deltas": args.deltas, "streams": args.streams, "rounds": args.rounds}
    if args.before:
        out["after_over_before"] = ratios
        out["before"] = args.before
    print(json.dumps(out))


if __name__ == "__main__":
    main()
