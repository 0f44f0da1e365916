"""A synthetic AI-agent workload: sessions of turns with nested LLM and tool-call spans."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from opentelemetry.trace import Span, SpanKind, Tracer, use_span

# Model -> gen_ai.system, as a provider's instrumentation would report it.
_MODELS = {"gpt-4o-mini": "openai", "claude-3-5-sonnet": "anthropic", "llama-3.1-70b-instruct": "aws.bedrock"}
_TOOLS = ("web_search", "read_file", "run_sql", "calculator", "fetch_url", "vector_search")


@dataclass(frozen=True)
class Workload:
    """How much work one run does; ``think_ms`` is simulated model latency per LLM call."""

    sessions: int = 600
    threads: int = 16
    turns: int = 4
    think_ms: float = 1.0


class SpanCounter:
    """Spans, sessions and CPU time per producer thread; each thread writes only its own slot, so no lock."""

    def __init__(self, threads: int) -> None:
        self.per_thread = [0] * threads
        self.cpu_ns = [0] * threads
        self.sessions = [0] * threads

    @property
    def total(self) -> int:
        return sum(self.per_thread)


class _Session:
    """One simulated user session; every span it ends is counted."""

    def __init__(self, tracer: Tracer, counter: SpanCounter, slot: int, rng: random.Random, think_ms: float) -> None:
        self._tracer = tracer
        self._counter = counter
        self._slot = slot
        self._rng = rng
        self._think = think_ms / 1000

    def _end(self, span: Span) -> None:
        span.end()
        self._counter.per_thread[self._slot] += 1

    def run(self, session_id: str, turns: int) -> None:
        model = self._rng.choice(list(_MODELS))
        for turn in range(turns):
            span = self._tracer.start_span("invoke_agent", kind=SpanKind.SERVER)
            span.set_attributes(
                {
                    "session.id": session_id,
                    "enduser.id": f"user-{self._rng.randrange(10_000)}",
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "support-agent",
                    "agent.turn": turn,
                }
            )
            with use_span(span, end_on_exit=False):
                history = 400 + turn * 900
                tools = self._rng.randint(0, 3)
                self._llm_call(model, history, "tool_calls" if tools else "stop")
                for _ in range(tools):
                    self._tool_call()
                if tools:
                    self._llm_call(model, history + 1500, "stop")
            self._end(span)

    def _llm_call(self, model: str, prompt_chars: int, finish: str) -> None:
        span = self._tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT)
        input_tokens = prompt_chars // 4
        output_tokens = self._rng.randint(20, 600)
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": _MODELS[model],
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 1024,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.response.finish_reasons": (finish,),
                "gen_ai.prompt.chars": prompt_chars,
                "server.address": "api.example.com",
            }
        )
        span.add_event("gen_ai.user.message", {"gen_ai.message.length": prompt_chars})
        if self._think:
            time.sleep(self._think)
        span.add_event("gen_ai.choice", {"gen_ai.response.finish_reason": finish, "tokens": output_tokens})
        self._end(span)

    def _tool_call(self) -> None:
        tool = self._rng.choice(_TOOLS)
        span = self._tracer.start_span(f"execute_tool {tool}", kind=SpanKind.INTERNAL)
        span.set_attributes(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{self._rng.getrandbits(48):012x}",
                "tool.arguments.bytes": self._rng.randint(30, 400),
            }
        )
        with use_span(span, end_on_exit=False):
            inner = self._tracer.start_span("GET" if tool != "run_sql" else "SELECT orders", kind=SpanKind.CLIENT)
            inner.set_attributes({"http.request.method": "GET", "http.response.status_code": 200, "url.full": tool})
            self._end(inner)
        span.set_attribute("tool.result.bytes", self._rng.randint(100, 20_000))
        self._end(span)


def run_workload(tracer: Tracer, workload: Workload, counter: SpanCounter, seed: int = 7) -> float:
    """Runs every session on ``workload.threads`` threads; returns the wall time in seconds."""
    pending = list(range(workload.sessions))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def producer(slot: int) -> None:
        # CPU time, not wall time: with many threads a wall clock mostly measures waiting for the GIL.
        cpu_started = time.thread_time_ns()
        try:
            produce(slot)
        finally:
            counter.cpu_ns[slot] = time.thread_time_ns() - cpu_started

    def produce(slot: int) -> None:
        while True:
            with lock:
                if not pending:
                    return
                number = pending.pop()
            # Seeded per session, so both contenders trace the same sessions whatever thread runs them.
            session = _Session(tracer, counter, slot, random.Random(seed * 100_003 + number), workload.think_ms)
            try:
                session.run(f"session-{number:05d}", workload.turns)
                counter.sessions[slot] += 1
            except BaseException as error:  # surfaced after join, not lost on a thread
                errors.append(error)
                return

    threads = [threading.Thread(target=producer, args=(i,), name=f"agent-{i}") for i in range(workload.threads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed
