"""The `headline` task plugin in Python, built with componentize-py.

The same plugin as the Rust template (examples/plugin-template): it reads
{"text": "..."}, asks the operator's LLM for a headline and the text's mood as
JSON valid against REPLY_SCHEMA, and returns
{"headline", "mood", "audience", "model"}. Config values: `audience`
(default "general readers") and `max_words` (a positive integer, default 12).

componentize-py generates the `wit_world` package from the contract. An
export that returns `result<_, task-error>` returns its value, or raises
`Err(TaskError_Permanent(...))` / `Err(TaskError_Retryable(...))`; an import
that fails raises `Err` with the import's error.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, llm, log
from wit_world.imports.types import (
    Mode,
    Outcome,
    PluginInfo,
    TaskError_Permanent,
    TaskError_Retryable,
    WorkItem,
)

REPLY_SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {
            "headline": {"type": "string", "minLength": 1, "maxLength": 200},
            "mood": {"enum": ["positive", "neutral", "negative"]},
        },
        "required": ["headline", "mood"],
        "additionalProperties": False,
    }
)


def permanent(message: str) -> Err:
    return Err(TaskError_Permanent(message))


def retryable(message: str) -> Err:
    return Err(TaskError_Retryable(message))


def llm_error(error, attempt: int) -> Err:
    """The standard mapping of an `llm` error (the Rust SDK's, in Python)."""
    if isinstance(error, llm.Error_Timeout):
        return retryable("the LLM call timed out")
    if isinstance(error, llm.Error_RateLimited):
        return retryable("the LLM provider is rate limiting")
    if isinstance(error, llm.Error_Provider):
        status, message = error.value.status, error.value.message
        if status in (408, 429) or status >= 500:
            return retryable(f"the LLM provider failed with status {status}: {message}")
        return permanent(f"the LLM provider rejected the request with status {status}: {message}")
    if isinstance(error, llm.Error_Denied):
        return permanent(
            f"the LLM call was denied: {error.value} (the operator configures LLM access "
            "under [tasks.<task_type>.llm])"
        )
    if isinstance(error, llm.Error_InvalidRequest):
        return permanent(f"the LLM request was refused as invalid: {error.value}")
    return once_then_permanent(attempt, "the LLM reply was larger than the host accepts")


def once_then_permanent(attempt: int, message: str) -> Err:
    """An unusable reply is retried once (models are not deterministic)."""
    if attempt <= 1:
        return retryable(f"{message} (attempt {attempt}, will retry once)")
    return permanent(f"{message} (attempt {attempt}, giving up)")


def positive(key: str, default: int) -> int:
    value = config.get(key)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number <= 0:
        raise permanent(f"config value `{key}` must be a positive integer, got {value!r}")
    return number


def instructions(audience: str, max_words: int) -> str:
    return (
        f"Write a headline of at most {max_words} words for {audience} about the user's text, "
        "and say whether its mood is positive, neutral or negative."
    )


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="headline", version="0.1.0", task_types=["headline"], mode=Mode.ITEM
        )

    def process(self, items: list[WorkItem]) -> Outcome:
        if len(items) != 1:
            raise permanent(f"expected exactly one item, got {len(items)}")
        item = items[0]
        try:
            text = json.loads(item.payload)["text"]
        except (ValueError, KeyError, TypeError) as e:
            raise permanent(
                f"item {item.id}: the payload does not have the expected shape: "
                f"missing field `text` ({e!r})"
            )
        audience = config.get("audience") or "general readers"
        max_words = positive("max_words", 12)
        request = llm.Request(
            model=None,
            messages=[
                llm.Message(llm.Role.SYSTEM, instructions(audience, max_words)),
                llm.Message(llm.Role.USER, text),
            ],
            max_tokens=200,
            temperature=0.0,
            stop=[],
            json_schema=REPLY_SCHEMA,
        )
        try:
            response = llm.complete(request)
        except Err as e:
            raise llm_error(e.value, item.attempt)
        try:
            reply = json.loads(response.content)
            headline, mood = reply["headline"], reply["mood"]
        except (ValueError, KeyError, TypeError) as e:
            raise once_then_permanent(
                item.attempt,
                f"the LLM reply cannot be used: {e!r}; raw reply: {response.content[:4096]!r}",
            )
        log.log(log.Level.INFO, f"item {item.id}: {headline!r}")
        output = {"headline": headline, "mood": mood, "audience": audience, "model": response.model}
        return Outcome(output=json.dumps(output, separators=(",", ":")), enqueue=[])
